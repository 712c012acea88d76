//! The `filter` entry point: the filter language and `order_by` of every List/Search.

use steward_common::filter::{
    self, Attr, Field, Filter, MAX_FILTER_LEN, MAX_NESTING, MAX_PREDICATES, RUN_STATUSES, Scope,
    Test, Value, VersionField,
};
use steward_storage::filter_sql::apply_test;
use steward_storage::sea_orm::sea_query::{
    Alias, Condition, Expr, PostgresQueryBuilder, Query, SqliteQueryBuilder,
};

use crate::check;

/// Every search scope.
const SCOPES: [Scope; 4] = [
    Scope::Runs,
    Scope::Experiments,
    Scope::Models,
    Scope::ModelVersions,
];

/// Parses `data` (as UTF-8, invalid sequences replaced) as a filter and as an `order_by` in
/// every scope.
///
/// Invariants checked besides "no panic":
/// - an empty (blank) filter is `None`, any other accepted one is at most
///   [`MAX_FILTER_LEN`] bytes, with at most [`MAX_PREDICATES`] conditions and at most
///   [`MAX_NESTING`] levels of NOT;
/// - every field exists in the scope searched, every value has the field's type (numbers
///   for metrics, epoch ms for times, a known status code for `status`), LIKE only on text,
///   IN lists hold 1 to 1000 values, AND/OR nodes have at least two operands;
/// - whitespace around a filter changes nothing;
/// - every accepted filter compiles to SQL for SQLite and PostgreSQL (through the services'
///   own compilers for experiments, models and versions; predicate by predicate for runs,
///   whose compiler is private);
/// - an accepted `order_by` has at most 3 keys, none a dataset field;
/// - every refusal is `INVALID_ARGUMENT` naming `filter` or `order_by`.
///
/// The monitoring service's simpler `field = "value" [AND ...]` filters are parsed too: an
/// accepted one names only allowed fields, each once, with unquoted values free of `"`.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for scope in SCOPES {
        check_filter(&text, scope);
        check_order_by(&text, scope);
    }
    simple_filter(&text);
}

fn simple_filter(text: &str) {
    for allowed in [
        &["model_version"][..],
        &["deployment"],
        &["state", "monitor"],
    ] {
        match steward_monitoring::api::convert::simple_filter(text, allowed) {
            Ok(m) => {
                assert_eq!(m.is_empty(), text.trim().is_empty(), "{text:?}: {m:?}");
                assert!(text.len() <= 1024 || m.is_empty());
                for (k, v) in &m {
                    assert!(allowed.contains(&k.as_str()), "{k:?}");
                    assert!(!v.contains('"'), "{v:?}");
                    assert!(
                        text.contains(&format!("\"{v}\"")),
                        "{v:?} not quoted in {text:?}"
                    );
                }
            }
            Err(e) => check::invalid(&e, "filter"),
        }
    }
}

/// The filter and `order_by` of one query in `scope`.
pub(crate) fn check_query(filter: &str, order_by: &str, scope: Scope) {
    check_filter(filter, scope);
    check_order_by(order_by, scope);
}

fn check_filter(text: &str, scope: Scope) {
    match filter::parse(text, scope, "filter") {
        Ok(None) => assert!(text.trim().is_empty(), "{text:?} parsed as no filter"),
        Ok(Some(f)) => {
            assert!(!text.trim().is_empty() && text.len() <= MAX_FILTER_LEN);
            let mut predicates = 0;
            walk(&f, scope, 0, &mut predicates);
            assert!(
                predicates <= MAX_PREDICATES,
                "{predicates} predicates in {f:?}"
            );
            compile(&f, scope);
            if text.len() + 2 <= MAX_FILTER_LEN {
                let padded = filter::parse(&format!(" {text}\n"), scope, "filter");
                assert_eq!(padded, Ok(Some(f)), "padding {text:?} changed its meaning");
            }
        }
        Err(e) => check::invalid(&e, "filter"),
    }
}

fn check_order_by(text: &str, scope: Scope) {
    match filter::parse_order_by(text, scope, "order_by") {
        Ok(keys) => {
            assert_eq!(
                keys.is_empty(),
                text.trim().is_empty(),
                "{text:?}: {keys:?}"
            );
            assert!(keys.len() <= 3, "{keys:?}");
            for k in &keys {
                assert!(!matches!(k.field, Field::Dataset(_)), "{keys:?}");
                check_field(&k.field, scope);
            }
        }
        Err(e) => check::invalid(&e, "order_by"),
    }
}

/// Compiles an accepted filter to SQL as the store of `scope` does; it must not be refused.
fn compile(f: &Filter, scope: Scope) {
    let x = Alias::new("x");
    let cond = match scope {
        Scope::Experiments => steward_tracking::store::search::experiment_condition(f, &x),
        Scope::Models => steward_registry::store::filter::model_condition(f, &x, &mut 0),
        Scope::ModelVersions => steward_registry::store::filter::version_condition(f, &x, &mut 0),
        Scope::Runs => Ok(predicates_condition(f)),
    };
    let cond = cond.unwrap_or_else(|e| panic!("accepted filter {f:?} does not compile: {e:?}"));
    let mut q = Query::select();
    q.expr(Expr::val(1))
        .from_as(Alias::new("t"), x)
        .cond_where(cond);
    let _ = q.build(PostgresQueryBuilder);
    let _ = q.build(SqliteQueryBuilder);
}

/// The filter with every predicate applied to one column.
fn predicates_condition(f: &Filter) -> Condition {
    match f {
        Filter::And(parts) => parts
            .iter()
            .fold(Condition::all(), |c, p| c.add(predicates_condition(p))),
        Filter::Or(parts) => parts
            .iter()
            .fold(Condition::any(), |c, p| c.add(predicates_condition(p))),
        Filter::Not(inner) => predicates_condition(inner).not(),
        Filter::Pred(_, test) => Condition::all().add(apply_test(Expr::col(Alias::new("c")), test)),
    }
}

/// Checks the tree under `f`; `nots` counts the NOTs above it.
fn walk(f: &Filter, scope: Scope, nots: usize, predicates: &mut usize) {
    match f {
        Filter::And(parts) | Filter::Or(parts) => {
            assert!(parts.len() >= 2, "AND/OR with one operand: {f:?}");
            for p in parts {
                walk(p, scope, nots, predicates);
            }
        }
        Filter::Not(inner) => {
            assert!(nots < MAX_NESTING, "more than {MAX_NESTING} nested NOTs");
            walk(inner, scope, nots + 1, predicates);
        }
        Filter::Pred(field, test) => {
            *predicates += 1;
            check_field(field, scope);
            check_test(field, test);
        }
    }
}

/// The type a field's values have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Time,
    Status,
}

fn kind(field: &Field) -> Kind {
    match field {
        Field::Metric(_) | Field::Version(VersionField::Number) => Kind::Number,
        Field::Attr(Attr::StartTime | Attr::EndTime | Attr::CreateTime | Attr::UpdateTime)
        | Field::Version(VersionField::CreateTime | VersionField::UpdateTime) => Kind::Time,
        Field::Attr(Attr::Status) => Kind::Status,
        _ => Kind::Text,
    }
}

/// The field exists in `scope` (the field lists of `Scope`'s documentation).
fn check_field(field: &Field, scope: Scope) {
    let ok = match field {
        Field::Param(k) | Field::Metric(k) => {
            scope == Scope::Runs && !k.is_empty() && k.len() <= 250
        }
        Field::Tag(k) => !k.is_empty() && k.len() <= 250,
        Field::Dataset(_) => scope != Scope::Experiments,
        Field::Version(_) => matches!(scope, Scope::Models | Scope::ModelVersions),
        Field::Attr(a) => match (scope, a) {
            (Scope::ModelVersions, _) => false,
            (_, Attr::CreateTime | Attr::UpdateTime) => true,
            (
                Scope::Runs,
                Attr::Status
                | Attr::RunName
                | Attr::RunId
                | Attr::StartTime
                | Attr::EndTime
                | Attr::Creator
                | Attr::ParentRunId
                | Attr::ExperimentId,
            ) => true,
            (Scope::Experiments, Attr::DisplayName | Attr::ExperimentId) => true,
            (Scope::Models, Attr::Name | Attr::Description | Attr::Creator) => true,
            _ => false,
        },
    };
    assert!(ok, "{field:?} is not a field of {scope:?}");
}

fn check_value(field: &Field, v: &Value) {
    let ok = match (kind(field), v) {
        (Kind::Number, Value::Num(_))
        | (Kind::Text, Value::Str(_))
        | (Kind::Time, Value::Int(_)) => true,
        (Kind::Status, Value::Int(code)) => RUN_STATUSES.iter().any(|(_, c)| c == code),
        _ => false,
    };
    assert!(ok, "{v:?} is not a value of {field:?}");
}

fn check_test(field: &Field, test: &Test) {
    match test {
        Test::Cmp(_, v) => check_value(field, v),
        Test::Like { .. } => assert_eq!(kind(field), Kind::Text, "LIKE on {field:?}"),
        Test::In { values, .. } => {
            assert!(
                (1..=1000).contains(&values.len()),
                "IN list of {}",
                values.len()
            );
            for v in values {
                check_value(field, v);
            }
        }
        Test::IsNull { .. } => {}
    }
}
