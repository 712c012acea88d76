//! Resource names (`experiments/{e}`, `experiments/{e}/runs/{r}`) and ids.
//!
//! Ids are opaque strings of 32 lowercase hex characters (UUIDv7, time-ordered, so they index
//! well). Names are parsed once at the API boundary into these newtypes.

use std::fmt;

use crate::Error;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A new random, time-ordered id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().simple().to_string())
            }
            /// Parses an id, checking its shape; `field` names the request field for errors.
            pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
                if is_valid_id(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(Error::invalid_field(field, format!("{s:?} is not a valid id (32 lowercase hex characters)")))
                }
            }
            /// Wraps a value read back from storage (already validated when written).
            pub fn from_stored(s: String) -> Self {
                Self(s)
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Id of an experiment.
    ExperimentId
);
id_type!(
    /// Id of a run.
    RunId
);

fn is_valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `experiments/{experiment}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExperimentName {
    /// The experiment's id.
    pub experiment: ExperimentId,
}

/// `experiments/{experiment}/runs/{run}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunName {
    /// The experiment's id.
    pub experiment: ExperimentId,
    /// The run's id.
    pub run: RunId,
}

impl ExperimentName {
    /// Parses `experiments/{e}`; `field` names the request field for errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        match s.split('/').collect::<Vec<_>>().as_slice() {
            ["experiments", e] => Ok(Self {
                experiment: ExperimentId::parse(e, field)?,
            }),
            _ => Err(Error::invalid_field(
                field,
                format!("{s:?} is not of the form experiments/{{experiment}}"),
            )),
        }
    }
}

impl RunName {
    /// Parses `experiments/{e}/runs/{r}`; `field` names the request field for errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        match s.split('/').collect::<Vec<_>>().as_slice() {
            ["experiments", e, "runs", r] => Ok(Self {
                experiment: ExperimentId::parse(e, field)?,
                run: RunId::parse(r, field)?,
            }),
            _ => Err(Error::invalid_field(
                field,
                format!("{s:?} is not of the form experiments/{{experiment}}/runs/{{run}}"),
            )),
        }
    }
}

impl fmt::Display for ExperimentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "experiments/{}", self.experiment)
    }
}

impl fmt::Display for RunName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "experiments/{}/runs/{}", self.experiment, self.run)
    }
}

/// Max length of a registered model id.
pub const MAX_MODEL_ID_LEN: usize = 128;
/// Max length of an alias.
pub const MAX_ALIAS_LEN: usize = 64;

/// A registered model id: 1-128 characters, ASCII letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit (safe in resource names, URLs and object keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(String);

impl ModelId {
    /// Validates a model id.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_MODEL_ID_LEN
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(Error::invalid_field(
                field,
                format!(
                    "{:?} is not a valid model id (1-{MAX_MODEL_ID_LEN} letters, digits, '.', '_' \
                     or '-', starting with a letter or digit)",
                    truncate(s)
                ),
            ))
        }
    }
    /// A stored id (already validated).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `registeredModels/{model}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName {
    /// Model id.
    pub model: ModelId,
}

impl ModelName {
    /// Parses `registeredModels/{model}`.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        match s.split_once('/') {
            Some(("registeredModels", m)) if !m.contains('/') && !m.contains('@') => Ok(Self {
                model: ModelId::parse(m, field)?,
            }),
            _ => Err(Error::invalid_field(
                field,
                format!(
                    "{:?} is not of the form registeredModels/{{model}}",
                    truncate(s)
                ),
            )),
        }
    }
    /// Accepts `registeredModels/{model}` or a bare `{model}` (for create requests).
    pub fn parse_lenient(s: &str, field: &str) -> Result<Self, Error> {
        if s.starts_with("registeredModels/") {
            Self::parse(s, field)
        } else {
            Ok(Self {
                model: ModelId::parse(s, field)?,
            })
        }
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registeredModels/{}", self.model)
    }
}

/// Validates an alias: a lowercase letter, then lowercase letters, digits, `_` or `-`, at most
/// 64 characters; not `latest` and not `v` followed by digits (those read as versions).
pub fn parse_alias(s: &str, field: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    let shape = !b.is_empty()
        && b.len() <= MAX_ALIAS_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    if !shape {
        return Err(Error::invalid_field(
            field,
            format!(
                "{:?} is not a valid alias (a lowercase letter, then lowercase letters, digits, \
                 '_' or '-'; at most {MAX_ALIAS_LEN})",
                truncate(s)
            ),
        ));
    }
    let version_like = b.len() > 1 && b[0] == b'v' && b[1..].iter().all(u8::is_ascii_digit);
    if s == "latest" || version_like {
        return Err(Error::invalid_field(
            field,
            format!("{s:?} is reserved (it reads as a version)"),
        ));
    }
    Ok(s.to_string())
}

/// A reference to a model version: `registeredModels/{m}/versions/{v}` or
/// `registeredModels/{m}@{alias}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionRef {
    /// A version number (from 1).
    Number(ModelId, i64),
    /// An alias.
    Alias(ModelId, String),
}

impl VersionRef {
    /// Parses either form.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid_field(
                field,
                format!(
                    "{:?} is not of the form registeredModels/{{model}}/versions/{{version}} or \
                     registeredModels/{{model}}@{{alias}}",
                    truncate(s)
                ),
            )
        };
        let rest = s.strip_prefix("registeredModels/").ok_or_else(bad)?;
        if let Some((m, alias)) = rest.split_once('@') {
            if m.contains('/') {
                return Err(bad());
            }
            return Ok(VersionRef::Alias(
                ModelId::parse(m, field)?,
                parse_alias(alias, field)?,
            ));
        }
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [m, "versions", v] => {
                let n = parse_version_number(v).ok_or_else(|| {
                    Error::invalid_field(
                        field,
                        format!("version {:?} is not a positive integer", truncate(v)),
                    )
                })?;
                Ok(VersionRef::Number(ModelId::parse(m, field)?, n))
            }
            _ => Err(bad()),
        }
    }

    /// The model referred to.
    pub fn model(&self) -> &ModelId {
        match self {
            VersionRef::Number(m, _) | VersionRef::Alias(m, _) => m,
        }
    }
}

fn parse_version_number(v: &str) -> Option<i64> {
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) || v.starts_with('0')
    {
        return None;
    }
    v.parse().ok()
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Number(m, v) => write!(f, "registeredModels/{m}/versions/{v}"),
            VersionRef::Alias(m, a) => write!(f, "registeredModels/{m}@{a}"),
        }
    }
}

/// `registeredModels/{m}/versions/{v}`.
pub fn version_name(model: &str, version: i64) -> String {
    format!("registeredModels/{model}/versions/{version}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn version_refs_parse_both_forms_and_round_trip() {
        for s in [
            "registeredModels/fraud/versions/3",
            "registeredModels/fraud-v2.1@production",
        ] {
            assert_eq!(VersionRef::parse(s, "name").unwrap().to_string(), s);
        }
        for bad in [
            "registeredModels/fraud/versions/0",
            "registeredModels/fraud/versions/03",
            "registeredModels/fraud/versions/-1",
            "registeredModels/fraud/versions/x",
            "registeredModels/fraud/versions/99999999999999999999",
            "registeredModels/fraud@Prod",
            "registeredModels/fraud@latest",
            "registeredModels/fraud@v2",
            "registeredModels/a/b@prod",
            "registeredModels/../versions/1",
            "registeredModels/fr aud/versions/1",
            "registeredModels/fraud/versions/1/x",
            "models/fraud/versions/1",
            "registeredModels/\0/versions/1",
        ] {
            let e = VersionRef::parse(bad, "name").unwrap_err();
            assert_eq!(e.violations[0].field, "name", "{bad}");
        }
    }

    #[test]
    fn model_ids_reject_separators_and_oversize() {
        assert!(ModelId::parse("fraud_detector-2.0", "f").is_ok());
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "a@b",
            "a b",
            "é",
            &"a".repeat(129),
        ] {
            assert!(ModelId::parse(bad, "f").is_err(), "{bad:?}");
        }
        assert_eq!(
            ModelName::parse_lenient("fraud", "f").unwrap().to_string(),
            "registeredModels/fraud"
        );
        assert!(ModelName::parse("registeredModels/fraud@x", "f").is_err());
    }

    proptest! {
        #[test]
        fn version_ref_parse_never_panics(s in ".{0,80}") {
            let _ = VersionRef::parse(&s, "name");
            let _ = ModelName::parse(&s, "name");
        }
    }

    #[test]
    fn run_name_round_trips() {
        let n = RunName {
            experiment: ExperimentId::generate(),
            run: RunId::generate(),
        };
        assert_eq!(RunName::parse(&n.to_string(), "name").unwrap(), n);
    }

    #[test]
    fn rejects_bad_names_naming_the_field() {
        for bad in [
            "",
            "experiments/",
            "experiments/x",
            "runs/0123",
            "experiments/../runs/a",
        ] {
            let e = RunName::parse(bad, "run").unwrap_err();
            assert_eq!(e.violations[0].field, "run", "{bad}");
        }
        assert!(
            ExperimentName::parse("experiments/0123456789abcdef0123456789ABCDEF", "e").is_err()
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_canonical(s in ".{0,80}") {
            if let Ok(n) = RunName::parse(&s, "run") {
                prop_assert_eq!(n.to_string(), s);
            }
        }
    }
}
