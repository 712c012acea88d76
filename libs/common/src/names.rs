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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
