//! The `resource_names` entry point: resource names and ids of every service.

use steward_common::names::{
    ExperimentId, ExperimentName, MAX_ALIAS_LEN, MAX_MODEL_ID_LEN, ModelId, ModelName, RunId,
    RunName, VersionRef, parse_alias, version_name,
};
use steward_tracking::domain::datasets::{
    self, MAX_DATASET_ID, VersionRef as DatasetVersion, parse_dataset_id, parse_dataset_name,
    parse_version_name,
};

use crate::check;

/// Parses `data` (as UTF-8, invalid sequences replaced) with every resource-name parser:
/// experiment and run names and ids, model ids, model names (strict and lenient), aliases,
/// model version references (`registeredModels/{m}/versions/{v}` and `@{alias}`), dataset ids,
/// names and version names, deployment names, and the `{collection}/{id}` names of the
/// monitoring service.
///
/// Invariants checked besides "no panic":
/// - each parser accepts exactly the language its documentation describes (checked against
///   a small independent implementation of each grammar);
/// - an accepted name formats back to the same text (lenient forms: to the canonical one);
/// - every refusal is `INVALID_ARGUMENT` naming the field.
pub fn resource_names(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    ids(s);
    common_names(s);
    models(s);
    dataset_names(s);
    service_names(s);
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[A-Za-z0-9._-]{1,max}`, starting with a letter or digit.
fn is_slug(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A lowercase letter, then lowercase letters, digits, `_` or `-`; not `latest`, not `v<digits>`.
fn is_alias(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = !b.is_empty()
        && b.len() <= MAX_ALIAS_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    let version_like = b.len() > 1 && b[0] == b'v' && b[1..].iter().all(u8::is_ascii_digit);
    shape && s != "latest" && !version_like
}

/// A version number: 1 to 18 digits without a leading zero (so it always fits an i64).
fn version_number(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok().filter(|n| *n >= 1)
}

fn ids(s: &str) {
    match ExperimentId::parse(s, "experiment_id") {
        Ok(id) => {
            assert!(is_hex_id(s), "{s:?}");
            assert_eq!(id.as_str(), s);
        }
        Err(e) => {
            assert!(!is_hex_id(s), "{s:?} refused");
            check::invalid(&e, "experiment_id");
        }
    }
    assert_eq!(RunId::parse(s, "run_id").is_ok(), is_hex_id(s), "{s:?}");
}

fn common_names(s: &str) {
    let parts: Vec<&str> = s.split('/').collect();
    let experiment = matches!(parts.as_slice(), ["experiments", e] if is_hex_id(e));
    match ExperimentName::parse(s, "name") {
        Ok(n) => {
            assert!(experiment, "{s:?}");
            assert_eq!(n.to_string(), s);
        }
        Err(e) => {
            assert!(!experiment, "{s:?} refused");
            check::invalid(&e, "name");
        }
    }
    let run =
        matches!(parts.as_slice(), ["experiments", e, "runs", r] if is_hex_id(e) && is_hex_id(r));
    match RunName::parse(s, "run") {
        Ok(n) => {
            assert!(run, "{s:?}");
            assert_eq!(n.to_string(), s);
            assert_eq!(
                ExperimentName::parse(&format!("experiments/{}", n.experiment), "e")
                    .map(|x| x.experiment),
                Ok(n.experiment.clone())
            );
        }
        Err(e) => {
            assert!(!run, "{s:?} refused");
            check::invalid(&e, "run");
        }
    }
}

fn models(s: &str) {
    let id_ok = is_slug(s, MAX_MODEL_ID_LEN);
    match ModelId::parse(s, "model_id") {
        Ok(id) => {
            assert!(id_ok, "{s:?}");
            assert_eq!(id.as_str(), s);
        }
        Err(e) => {
            assert!(!id_ok, "{s:?} refused");
            check::invalid(&e, "model_id");
        }
    }
    let strict = s
        .strip_prefix("registeredModels/")
        .is_some_and(|m| is_slug(m, MAX_MODEL_ID_LEN));
    match ModelName::parse(s, "name") {
        Ok(n) => {
            assert!(strict, "{s:?}");
            assert_eq!(n.to_string(), s);
        }
        Err(e) => {
            assert!(!strict, "{s:?} refused");
            check::invalid(&e, "name");
        }
    }
    match ModelName::parse_lenient(s, "name") {
        Ok(n) => {
            let canonical = n.to_string();
            assert!(
                canonical == s || canonical == format!("registeredModels/{s}"),
                "{s:?}"
            );
            assert_eq!(ModelName::parse(&canonical, "name"), Ok(n));
        }
        Err(e) => check::invalid(&e, "name"),
    }
    match parse_alias(s, "alias") {
        Ok(a) => {
            assert!(is_alias(s), "{s:?}");
            assert_eq!(a, s);
        }
        Err(e) => {
            assert!(!is_alias(s), "{s:?} refused");
            check::invalid(&e, "alias");
        }
    }
    version_refs(s);
}

fn version_refs(s: &str) {
    let expected = s.strip_prefix("registeredModels/").and_then(|rest| {
        if let Some((m, alias)) = rest.split_once('@') {
            (is_slug(m, MAX_MODEL_ID_LEN) && is_alias(alias))
                .then(|| VersionRef::Alias(ModelId::from_stored(m.into()), alias.into()))
        } else {
            match rest.split('/').collect::<Vec<_>>().as_slice() {
                [m, "versions", v] if is_slug(m, MAX_MODEL_ID_LEN) => version_number(v)
                    .map(|n| VersionRef::Number(ModelId::from_stored((*m).into()), n)),
                _ => None,
            }
        }
    });
    match VersionRef::parse(s, "name") {
        Ok(r) => {
            assert_eq!(Some(&r), expected.as_ref(), "{s:?}");
            assert_eq!(r.to_string(), s);
            if let VersionRef::Number(m, n) = &r {
                assert_eq!(version_name(m.as_str(), *n), s);
            }
        }
        Err(e) => {
            assert_eq!(expected, None, "{s:?} refused");
            check::invalid(&e, "name");
        }
    }
}

fn dataset_names(s: &str) {
    assert_eq!(
        parse_dataset_id(s, "dataset_id").is_ok(),
        is_slug(s, MAX_DATASET_ID),
        "{s:?}"
    );
    match parse_dataset_name(s, "name") {
        Ok(id) => assert_eq!(format!("datasets/{id}"), s),
        Err(e) => check::invalid(&e, "name"),
    }
    match parse_version_name(s, "name") {
        Ok((id, v)) => {
            assert!(is_slug(&id, MAX_DATASET_ID), "{s:?}");
            let canonical = match v {
                DatasetVersion::Number(n) => {
                    assert!(n >= 1, "{s:?}");
                    datasets::version_name(&id, n)
                }
                DatasetVersion::Latest => format!("datasets/{id}/versions/latest"),
            };
            assert_eq!(canonical, s);
        }
        Err(e) => check::invalid(&e, "name"),
    }
}

/// Names parsed by the deployment and monitoring APIs.
fn service_names(s: &str) {
    match steward_deployment::api::service::dep_id(s, "deployment") {
        Ok(id) => {
            assert!(is_slug(&id, MAX_MODEL_ID_LEN), "{s:?}");
            assert!(s == id || s == format!("deployments/{id}"), "{s:?}");
        }
        Err(e) => check::invalid(&e, "deployment"),
    }
    use steward_monitoring::api::convert::{id_of, new_id};
    for collection in ["monitors", "baselines", "channels", "deployments"] {
        match id_of(s, collection, "name") {
            Ok(id) => {
                assert!(is_slug(&id, 128), "{s:?}");
                assert!(s == id || s == format!("{collection}/{id}"), "{s:?}");
            }
            Err(e) => check::invalid(&e, "name"),
        }
    }
    match new_id(s, "monitor_id") {
        Ok(None) => assert!(s.is_empty()),
        Ok(Some(id)) => {
            assert_eq!(id, s);
            assert!(is_slug(s, 128), "{s:?}");
        }
        Err(e) => check::invalid(&e, "monitor_id"),
    }
}
