//! The search filter language and `order_by`, parsed into a typed tree.
//!
//! ```text
//! expr       := or
//! or         := and ( OR and )*
//! and        := unary ( AND unary )*
//! unary      := NOT unary | '(' expr ')' | predicate
//! predicate  := field ( cmp value | [NOT] LIKE str | [NOT] ILIKE str
//!                     | [NOT] IN '(' value (',' value)* ')' | IS [NOT] NULL )
//! field      := params.KEY | metrics.KEY | tags.KEY | attributes.NAME | datasets.NAME | NAME
//! KEY        := word | `back-quoted` | "double-quoted"
//! value      := 'single-quoted' | number
//! ```
//! Keywords are case-insensitive. Errors name the position (a character offset) and what was
//! expected. Values are type-checked here: metrics compare with numbers, times accept epoch
//! milliseconds or RFC 3339 strings, `status` accepts run status names.

use std::fmt;

use crate::Error;

/// Max length of a filter expression.
pub const MAX_FILTER_LEN: usize = 4096;
/// Max number of predicates in one filter.
pub const MAX_PREDICATES: usize = 64;
/// Most levels of parentheses and NOT around a condition.
pub const MAX_NESTING: usize = 32;

/// Run status names and their stored codes (the `steward.tracking.v1.RunStatus` numbers).
pub const RUN_STATUSES: [(&str, i64); 5] = [
    ("RUNNING", 1),
    ("SCHEDULED", 2),
    ("FINISHED", 3),
    ("FAILED", 4),
    ("KILLED", 5),
];

/// What is being searched (decides which fields exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Runs: params, metrics, tags, attributes, datasets.
    Runs,
    /// Experiments: tags and attributes.
    Experiments,
    /// Registered models: name, description, creator, times, tags and `latest_version.*`.
    Models,
    /// Versions of one registered model: the version fields and tags.
    ModelVersions,
}

/// A run or experiment attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// Run status.
    Status,
    /// Run name.
    RunName,
    /// Run id.
    RunId,
    /// Start time.
    StartTime,
    /// End time.
    EndTime,
    /// Creation time.
    CreateTime,
    /// Update time.
    UpdateTime,
    /// Creator.
    Creator,
    /// Parent run id.
    ParentRunId,
    /// Experiment id.
    ExperimentId,
    /// Experiment display name.
    DisplayName,
    /// Registered model name.
    Name,
    /// Description.
    Description,
}

impl Attr {
    fn kind(self) -> Kind {
        match self {
            Attr::StartTime | Attr::EndTime | Attr::CreateTime | Attr::UpdateTime => Kind::Time,
            Attr::Status => Kind::Status,
            _ => Kind::Text,
        }
    }
}

/// Dataset fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetField {
    /// Dataset name.
    Name,
    /// Content digest.
    Digest,
    /// Context of use (training, ...).
    Context,
    /// Source URI.
    SourceUri,
}

/// Fields of a model version (`latest_version.FIELD` on models, `FIELD` on versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionField {
    /// Version number.
    Number,
    /// CREATING, READY or FAILED.
    Status,
    /// Model format (onnx, sklearn, ...).
    Format,
    /// Approval state: PENDING, APPROVED or REJECTED.
    Approval,
    /// Who created the version.
    Creator,
    /// Source run name (`experiments/{e}/runs/{r}`), empty for external sources.
    SourceRun,
    /// Content digest.
    Digest,
    /// Creation time.
    CreateTime,
    /// Last update time.
    UpdateTime,
}

impl VersionField {
    fn kind(self) -> Kind {
        match self {
            VersionField::Number => Kind::Number,
            VersionField::CreateTime | VersionField::UpdateTime => Kind::Time,
            VersionField::Status
            | VersionField::Format
            | VersionField::Approval
            | VersionField::Creator
            | VersionField::SourceRun
            | VersionField::Digest => Kind::Text,
        }
    }

    fn from_name(s: &str) -> Option<VersionField> {
        Some(match s.to_ascii_lowercase().as_str() {
            "version" | "number" => VersionField::Number,
            "status" => VersionField::Status,
            "format" | "model_format" => VersionField::Format,
            "approval" | "approval_state" => VersionField::Approval,
            "creator" | "user" => VersionField::Creator,
            "source_run" | "run" => VersionField::SourceRun,
            "digest" | "content_digest" => VersionField::Digest,
            "create_time" => VersionField::CreateTime,
            "update_time" => VersionField::UpdateTime,
            _ => return None,
        })
    }
}

/// A searchable field.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `params.KEY`.
    Param(String),
    /// `metrics.KEY` (latest value).
    Metric(String),
    /// `tags.KEY`.
    Tag(String),
    /// `attributes.NAME`.
    Attr(Attr),
    /// `datasets.NAME`.
    Dataset(DatasetField),
    /// A model version field (`latest_version.NAME` on models, `NAME` on versions).
    Version(VersionField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Time,
    Status,
}

impl Field {
    fn kind(&self) -> Kind {
        match self {
            Field::Metric(_) => Kind::Number,
            Field::Attr(a) => a.kind(),
            Field::Version(v) => v.kind(),
            Field::Param(_) | Field::Tag(_) | Field::Dataset(_) => Kind::Text,
        }
    }
}

/// A typed literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// Floating-point number (metrics).
    Num(f64),
    /// Integer (times in ms, status codes).
    Int(i64),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// What a predicate tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Comparison with a value.
    Cmp(CmpOp, Value),
    /// SQL LIKE pattern; `ci` for ILIKE.
    Like {
        /// The pattern (`%` and `_` wildcards).
        pattern: String,
        /// Case-insensitive.
        ci: bool,
        /// NOT LIKE.
        negated: bool,
    },
    /// Membership.
    In {
        /// Values.
        values: Vec<Value>,
        /// NOT IN.
        negated: bool,
    },
    /// Presence.
    IsNull {
        /// IS NOT NULL.
        negated: bool,
    },
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must hold.
    And(Vec<Filter>),
    /// Any must hold.
    Or(Vec<Filter>),
    /// Must not hold.
    Not(Box<Filter>),
    /// One test of one field.
    Pred(Field, Test),
}

/// One `order_by` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// Field (params, metrics, tags or a sortable attribute).
    pub field: Field,
    /// Descending.
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Back(String),
    Str(String),
    Num(f64, String),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Quoted(w) | Tok::Back(w) => write!(f, "key `{w}`"),
            Tok::Str(s) => write!(f, "string '{s}'"),
            Tok::Num(_, t) => write!(f, "number {t}"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Op(_) => f.write_str("an operator"),
            Tok::End => f.write_str("the end of the filter"),
        }
    }
}

fn err(field: &str, pos: usize, msg: impl fmt::Display) -> Error {
    Error::invalid_field(field, format!("at position {pos}: {msg}"))
}

fn lex(input: &str, field: &str) -> Result<Vec<(usize, Tok)>, Error> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let pos_of = |i: usize| {
        input[..chars.get(i).map(|c| c.0).unwrap_or(input.len())]
            .chars()
            .count()
    };
    while i < chars.len() {
        let (_, c) = chars[i];
        let start = pos_of(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            '=' => {
                out.push((start, Tok::Op(CmpOp::Eq)));
                i += if chars.get(i + 1).map(|c| c.1) == Some('=') {
                    2
                } else {
                    1
                };
            }
            '!' => {
                if chars.get(i + 1).map(|c| c.1) == Some('=') {
                    out.push((start, Tok::Op(CmpOp::Ne)));
                    i += 2;
                } else {
                    return Err(err(field, start, "`!` must be followed by `=`"));
                }
            }
            '<' => match chars.get(i + 1).map(|c| c.1) {
                Some('=') => {
                    out.push((start, Tok::Op(CmpOp::Le)));
                    i += 2;
                }
                Some('>') => {
                    out.push((start, Tok::Op(CmpOp::Ne)));
                    i += 2;
                }
                _ => {
                    out.push((start, Tok::Op(CmpOp::Lt)));
                    i += 1;
                }
            },
            '>' => {
                if chars.get(i + 1).map(|c| c.1) == Some('=') {
                    out.push((start, Tok::Op(CmpOp::Ge)));
                    i += 2;
                } else {
                    out.push((start, Tok::Op(CmpOp::Gt)));
                    i += 1;
                }
            }
            '\'' | '"' | '`' => {
                let q = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i).map(|c| c.1) {
                        None => {
                            return Err(err(field, start, format!("unterminated {q}-quoted text")));
                        }
                        Some(ch) if ch == q => {
                            if chars.get(i + 1).map(|c| c.1) == Some(q) {
                                s.push(q);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((
                    start,
                    match q {
                        '\'' => Tok::Str(s),
                        '"' => Tok::Quoted(s),
                        _ => Tok::Back(s),
                    },
                ));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.1.is_ascii_digit() || n.1 == '.')) =>
            {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.get(i) {
                    let exp_sign = (ch == '-' || ch == '+') && s.ends_with(['e', 'E']);
                    if ch.is_ascii_alphanumeric()
                        || ch == '.'
                        || exp_sign
                        || (s.is_empty() && (ch == '-' || ch == '+'))
                    {
                        s.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                let v: f64 = s
                    .parse()
                    .map_err(|_| err(field, start, format!("`{s}` is not a number")))?;
                out.push((start, Tok::Num(v, s)));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.get(i) {
                    if ch.is_alphanumeric() || matches!(ch, '_' | '.' | '-' | '/' | ':') {
                        s.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                // `metrics.` followed by a quoted key: keep the prefix as its own word.
                out.push((start, Tok::Word(s)));
            }
            other => return Err(err(field, start, format!("unexpected character {other:?}"))),
        }
    }
    out.push((input.chars().count(), Tok::End));
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    i: usize,
    field: &'a str,
    scope: Scope,
    predicates: usize,
    /// Parentheses and NOTs open around the current position.
    depth: usize,
}

fn kw(t: &Tok, k: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(k))
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].1
    }
    fn pos(&self) -> usize {
        self.toks[self.i].0
    }
    fn next(&mut self) -> (usize, Tok) {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn fail<T>(&self, msg: impl fmt::Display) -> Result<T, Error> {
        Err(err(self.field, self.pos(), msg))
    }

    fn or(&mut self) -> Result<Filter, Error> {
        let mut parts = vec![self.and()?];
        while kw(self.peek(), "or") {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, Error> {
        let mut parts = vec![self.unary()?];
        while kw(self.peek(), "and") {
            self.next();
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Filter::And(parts)
        })
    }

    /// A NOT, a parenthesised filter or a predicate. Nesting is bounded by [`MAX_NESTING`]:
    /// the parser recurses once per level, and a filter of thousands of `(` would otherwise
    /// overflow the stack of the thread serving it (aborting the whole process).
    fn unary(&mut self) -> Result<Filter, Error> {
        if self.depth >= MAX_NESTING {
            return self.fail(format!(
                "nested too deeply (at most {MAX_NESTING} levels of parentheses and NOT)"
            ));
        }
        self.depth += 1;
        let parsed = self.unary_inner();
        self.depth -= 1;
        parsed
    }

    fn unary_inner(&mut self) -> Result<Filter, Error> {
        if kw(self.peek(), "not") {
            self.next();
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if *self.peek() == Tok::LParen {
            self.next();
            let inner = self.or()?;
            if *self.peek() != Tok::RParen {
                return self.fail(format!("expected `)` but found {}", self.peek()));
            }
            self.next();
            return Ok(inner);
        }
        self.predicate()
    }

    fn field(&mut self) -> Result<Field, Error> {
        let (pos, t) = self.next();
        let Tok::Word(w) = t else {
            return Err(err(
                self.field,
                pos,
                format!("expected a field such as metrics.acc but found {t}"),
            ));
        };
        let (prefix, key) = match w.split_once('.') {
            Some((p, k)) if !k.is_empty() => (p.to_ascii_lowercase(), k.to_string()),
            Some((p, _)) => {
                // `metrics.` followed by a quoted key.
                let (kpos, kt) = self.next();
                match kt {
                    Tok::Quoted(k) | Tok::Back(k) | Tok::Str(k) => (p.to_ascii_lowercase(), k),
                    other => {
                        return Err(err(
                            self.field,
                            kpos,
                            format!("expected a key after `{w}` but found {other}"),
                        ));
                    }
                }
            }
            None => (String::new(), w.clone()),
        };
        resolve_field(self.scope, &prefix, &key).ok_or_else(|| {
            let known = match self.scope {
                Scope::Runs => "params.*, metrics.*, tags.*, attributes.{status, run_name, run_id, start_time, end_time, create_time, update_time, creator, parent_run_id}, datasets.{name, digest, context, source_uri}",
                Scope::Experiments => "display_name, create_time, update_time, tags.*",
                Scope::Models => "name, description, creator, create_time, update_time, tags.*, latest_version.{version, status, format, approval, creator, source_run, digest, create_time, update_time}, datasets.{name, digest, context, source_uri} (of any version)",
                Scope::ModelVersions => "version, status, format, approval, creator, source_run, digest, create_time, update_time, tags.*, datasets.{name, digest, context, source_uri}",
            };
            err(self.field, pos, format!("unknown field `{w}`; known fields: {known}"))
        })
    }

    fn value(&mut self, field: &Field) -> Result<Value, Error> {
        let (pos, t) = self.next();
        let e = |m: String| Err(err(self.field, pos, m));
        match (field.kind(), t) {
            (Kind::Number, Tok::Num(v, _)) => Ok(Value::Num(v)),
            (Kind::Number, Tok::Word(w))
                if ["inf", "infinity", "+inf"].contains(&w.to_ascii_lowercase().as_str()) =>
            {
                Ok(Value::Num(f64::INFINITY))
            }
            (Kind::Number, other) => e(format!("metrics compare with a number, found {other}")),
            (Kind::Text, Tok::Str(s)) => Ok(Value::Str(s)),
            (Kind::Text, Tok::Num(_, text)) => Ok(Value::Str(text)),
            (Kind::Text, other) => e(format!("expected a 'quoted' string, found {other}")),
            (Kind::Time, Tok::Num(v, text)) => {
                if v.fract() != 0.0 || !v.is_finite() {
                    return e(format!("time {text} must be whole epoch milliseconds"));
                }
                Ok(Value::Int(v as i64))
            }
            (Kind::Time, Tok::Str(s)) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Value::Int(t.timestamp_millis()))
                .or_else(|_| {
                    e(format!(
                        "'{s}' is not an RFC 3339 time such as '2026-01-31T12:00:00Z'"
                    ))
                }),
            (Kind::Time, other) => e(format!(
                "expected epoch milliseconds or an RFC 3339 string, found {other}"
            )),
            (Kind::Status, Tok::Str(s)) => match RUN_STATUSES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&s))
            {
                Some((_, code)) => Ok(Value::Int(*code)),
                None => e(format!(
                    "'{s}' is not a run status (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)"
                )),
            },
            (Kind::Status, other) => e(format!(
                "expected a status such as 'FINISHED', found {other}"
            )),
        }
    }

    fn predicate(&mut self) -> Result<Filter, Error> {
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            return self.fail(format!("too many conditions (at most {MAX_PREDICATES})"));
        }
        let field = self.field()?;
        let negated = if kw(self.peek(), "not") {
            self.next();
            true
        } else {
            false
        };
        let (pos, t) = self.next();
        let test = match t {
            Tok::Op(op) if !negated => Test::Cmp(op, self.value(&field)?),
            Tok::Word(w) if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("ilike") => {
                if !matches!(field.kind(), Kind::Text) {
                    return Err(err(
                        self.field,
                        pos,
                        "LIKE works on params, tags, names and dataset fields only",
                    ));
                }
                let (ppos, pt) = self.next();
                let Tok::Str(pattern) = pt else {
                    return Err(err(
                        self.field,
                        ppos,
                        format!("LIKE needs a 'quoted' pattern, found {pt}"),
                    ));
                };
                Test::Like {
                    pattern,
                    ci: w.eq_ignore_ascii_case("ilike"),
                    negated,
                }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => {
                if *self.peek() != Tok::LParen {
                    return self.fail(format!("expected `(` after IN, found {}", self.peek()));
                }
                self.next();
                let mut values = vec![self.value(&field)?];
                while *self.peek() == Tok::Comma {
                    self.next();
                    values.push(self.value(&field)?);
                }
                if *self.peek() != Tok::RParen {
                    return self.fail(format!(
                        "expected `,` or `)` in the IN list, found {}",
                        self.peek()
                    ));
                }
                self.next();
                if values.len() > 1000 {
                    return Err(err(self.field, pos, "IN lists hold at most 1000 values"));
                }
                Test::In { values, negated }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("is") && !negated => {
                let not = if kw(self.peek(), "not") {
                    self.next();
                    true
                } else {
                    false
                };
                if !kw(self.peek(), "null") {
                    return self.fail(format!("expected NULL after IS, found {}", self.peek()));
                }
                self.next();
                Test::IsNull { negated: not }
            }
            other => {
                return Err(err(
                    self.field,
                    pos,
                    format!(
                        "expected an operator (= != < <= > >= LIKE ILIKE IN IS) but found {other}"
                    ),
                ));
            }
        };
        Ok(Filter::Pred(field, test))
    }
}

fn resolve_field(scope: Scope, prefix: &str, key: &str) -> Option<Field> {
    let attr = |name: &str| -> Option<Attr> {
        Some(match (scope, name.to_ascii_lowercase().as_str()) {
            (Scope::Runs, "status") => Attr::Status,
            (Scope::Runs, "run_name" | "name") => Attr::RunName,
            (Scope::Runs, "run_id" | "id") => Attr::RunId,
            (Scope::Runs, "start_time") => Attr::StartTime,
            (Scope::Runs, "end_time") => Attr::EndTime,
            (Scope::Runs, "creator" | "user") => Attr::Creator,
            (Scope::Runs, "parent_run_id" | "parent_run") => Attr::ParentRunId,
            (Scope::Runs, "experiment_id") => Attr::ExperimentId,
            (Scope::Experiments, "display_name" | "name") => Attr::DisplayName,
            (Scope::Experiments, "experiment_id" | "id") => Attr::ExperimentId,
            (Scope::Models, "name") => Attr::Name,
            (Scope::Models, "description") => Attr::Description,
            (Scope::Models, "creator" | "user") => Attr::Creator,
            (_, "create_time") => Attr::CreateTime,
            (_, "update_time") => Attr::UpdateTime,
            _ => return None,
        })
    };
    if key.is_empty() || key.len() > 250 {
        return None;
    }
    match (scope, prefix) {
        (Scope::ModelVersions, "" | "attributes" | "attribute" | "attr") => {
            VersionField::from_name(key).map(Field::Version)
        }
        (Scope::Models, "") if key.eq_ignore_ascii_case("latest_version") => {
            Some(Field::Version(VersionField::Number))
        }
        (Scope::Models, "latest_version") => VersionField::from_name(key).map(Field::Version),
        (Scope::Runs, "params" | "param") => Some(Field::Param(key.into())),
        (Scope::Runs, "metrics" | "metric") => Some(Field::Metric(key.into())),
        (_, "tags" | "tag") => Some(Field::Tag(key.into())),
        (_, "attributes" | "attribute" | "attr") | (_, "") => attr(key).map(Field::Attr),
        (Scope::Runs | Scope::Models | Scope::ModelVersions, "datasets" | "dataset") => {
            Some(Field::Dataset(match key.to_ascii_lowercase().as_str() {
                "name" => DatasetField::Name,
                "digest" => DatasetField::Digest,
                "context" => DatasetField::Context,
                "source_uri" => DatasetField::SourceUri,
                _ => return None,
            }))
        }
        _ => None,
    }
}

/// Parses a filter; `None` for an empty one. `field` names the request field for errors.
pub fn parse(input: &str, scope: Scope, field: &str) -> Result<Option<Filter>, Error> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    if input.len() > MAX_FILTER_LEN {
        return Err(Error::limit(
            field,
            format!("at most {MAX_FILTER_LEN} characters"),
        ));
    }
    let toks = lex(input, field)?;
    let mut p = Parser {
        toks,
        i: 0,
        field,
        scope,
        predicates: 0,
        depth: 0,
    };
    let f = p.or()?;
    if *p.peek() != Tok::End {
        return p.fail(format!("expected AND, OR or the end, found {}", p.peek()));
    }
    Ok(Some(f))
}

/// Parses `order_by`: comma-separated fields with optional `asc`/`desc` (at most 3).
pub fn parse_order_by(input: &str, scope: Scope, field: &str) -> Result<Vec<OrderKey>, Error> {
    let mut keys = Vec::new();
    if input.trim().is_empty() {
        return Ok(keys);
    }
    if input.len() > MAX_FILTER_LEN {
        return Err(Error::limit(
            field,
            format!("at most {MAX_FILTER_LEN} characters"),
        ));
    }
    let toks = lex(input, field)?;
    let mut p = Parser {
        toks,
        i: 0,
        field,
        scope,
        predicates: 0,
        depth: 0,
    };
    loop {
        let pos = p.pos();
        let f = p.field()?;
        if matches!(f, Field::Dataset(_)) {
            return Err(err(field, pos, "cannot order by dataset fields"));
        }
        let desc = if kw(p.peek(), "desc") {
            p.next();
            true
        } else {
            if kw(p.peek(), "asc") {
                p.next();
            }
            false
        };
        keys.push(OrderKey { field: f, desc });
        match p.peek() {
            Tok::Comma => {
                p.next();
            }
            Tok::End => break,
            other => return p.fail(format!("expected `,`, ASC, DESC or the end, found {other}")),
        }
    }
    if keys.len() > 3 {
        return Err(Error::limit(field, "at most 3 order_by keys"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile nesting is refused with an error naming the field, never by overflowing the
    /// stack (run on a thread with tokio's 2 MiB worker stack).
    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let parens = format!("{}params.a = '1'{}", "(".repeat(2000), ")".repeat(2000));
        let nots = format!("{}params.a = '1'", "not ".repeat(1000));
        let mixed = format!("{}params.a = '1'{}", "not (".repeat(600), ")".repeat(600));
        for f in [parens, nots, mixed] {
            let e = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || parse(&f, Scope::Runs, "filter").map(|_| ()))
                .unwrap()
                .join()
                .expect("no stack overflow")
                .unwrap_err();
            assert!(e.message.contains("nested too deeply"), "{e:?}");
            assert_eq!(e.violations[0].field, "filter", "{e:?}");
        }
        let ok = format!(
            "{}params.a = '1'{}",
            "(".repeat(MAX_NESTING - 1),
            ")".repeat(MAX_NESTING - 1)
        );
        assert!(parse(&ok, Scope::Runs, "filter").unwrap().is_some());
    }
    use proptest::prelude::*;

    fn runs(s: &str) -> Result<Option<Filter>, Error> {
        parse(s, Scope::Runs, "filter")
    }

    #[test]
    fn parses_the_full_language() {
        let f = runs("metrics.acc > 0.9 AND params.lr = '0.01' OR NOT (tags.team LIKE 'ri%' AND attributes.status IN ('FINISHED','FAILED')) AND datasets.digest IS NOT NULL").unwrap().unwrap();
        let Filter::Or(parts) = f else {
            panic!("top is OR")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            Filter::And(vec![
                Filter::Pred(
                    Field::Metric("acc".into()),
                    Test::Cmp(CmpOp::Gt, Value::Num(0.9))
                ),
                Filter::Pred(
                    Field::Param("lr".into()),
                    Test::Cmp(CmpOp::Eq, Value::Str("0.01".into()))
                ),
            ])
        );
        assert!(runs("metrics.`val loss` <= -1e-3").unwrap().is_some());
        assert!(runs("metrics.\"val loss\" >= 2").unwrap().is_some());
        assert!(
            runs("attributes.start_time > '2026-01-01T00:00:00Z'")
                .unwrap()
                .is_some()
        );
        assert!(
            runs("status = 'finished' and run_name ilike '%a%'")
                .unwrap()
                .is_some()
        );
        assert!(
            runs("tags.x NOT LIKE 'a%' AND params.p NOT IN ('1', '2') AND tags.y IS NULL")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("metrics.acc >", "position 13"),
            ("metrics.acc > 'high'", "number"),
            ("foo.bar = 1", "unknown field `foo.bar`"),
            ("(metrics.acc > 1", "expected `)`"),
            ("metrics.acc > 1 metrics.b > 2", "expected AND, OR"),
            ("params.x = 'unterminated", "unterminated"),
            ("attributes.status = 'DONE'", "not a run status"),
            ("metrics.acc LIKE 'a%'", "LIKE works on"),
            ("attributes.start_time > 'yesterday'", "RFC 3339"),
            ("params.a ! 'b'", "`!` must be followed"),
        ];
        for (input, want) in cases {
            let e = runs(input).unwrap_err();
            assert_eq!(e.violations[0].field, "filter");
            assert!(e.message.contains(want), "{input}: {}", e.message);
        }
    }

    #[test]
    fn order_by() {
        let k = parse_order_by(
            "metrics.acc desc, attributes.start_time",
            Scope::Runs,
            "order_by",
        )
        .unwrap();
        assert_eq!(k.len(), 2);
        assert!(k[0].desc && !k[1].desc);
        assert!(parse_order_by("datasets.name", Scope::Runs, "order_by").is_err());
        assert!(parse_order_by("metrics.a desc desc", Scope::Runs, "order_by").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,120}") {
            let _ = runs(&s);
            let _ = parse_order_by(&s, Scope::Runs, "order_by");
        }

        #[test]
        fn generated_filters_parse(key in "[a-z][a-z0-9_]{0,10}", v in -1e6f64..1e6, op in prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="])) {
            let s = format!("metrics.{key} {op} {v} OR params.{key} = '{v}'");
            prop_assert!(runs(&s).unwrap().is_some());
        }
    }
}
