//! Pure parsing for the registry commands: short model and version names, `key=value` tags and
//! RFC 3339 times. The server validates names fully; this only expands what people type.

use anyhow::{Result, bail};

const MODELS: &str = "registeredModels/";

/// `registeredModels/{m}` for `{m}` or the full name.
pub fn model_name(s: &str) -> Result<String> {
    let id = s.strip_prefix(MODELS).unwrap_or(s);
    if id.is_empty() || id.contains('/') || id.contains('@') {
        bail!("{s:?} is not a model: give `{{model}}` or `registeredModels/{{model}}`");
    }
    Ok(format!("{MODELS}{id}"))
}

/// The version resource name for any of `registeredModels/{m}/versions/{v}`,
/// `registeredModels/{m}@{alias}`, `{m}/versions/{v}`, `{m}/{v}` and `{m}@{alias}`.
pub fn version_name(s: &str) -> Result<String> {
    let rest = s.strip_prefix(MODELS).unwrap_or(s);
    let bad = || {
        anyhow::anyhow!(
            "{s:?} is not a model version: give `{{model}}/{{version}}` or `{{model}}@{{alias}}` \
             (or the full name `registeredModels/{{model}}/versions/{{version}}`)"
        )
    };
    if let Some((model, alias)) = rest.split_once('@') {
        if model.is_empty() || model.contains('/') || alias.is_empty() {
            return Err(bad());
        }
        return Ok(format!("{MODELS}{model}@{alias}"));
    }
    let (model, version) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        [m, "versions", v] | [m, v] => (*m, *v),
        _ => return Err(bad()),
    };
    if model.is_empty() || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(format!("{MODELS}{model}/versions/{version}"))
}

/// A `key=value` tag (the value may contain `=` and may be empty; the key may not).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// An RFC 3339 time (`2026-01-31T12:00:00Z`, any offset) as a protobuf timestamp.
pub fn parse_time(s: &str) -> Result<prost_types::Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
        anyhow::anyhow!("{s:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}")
    })?;
    Ok(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

/// A protobuf timestamp as RFC 3339 in UTC with the full precision (for JSON; round-trips
/// through [`parse_time`]).
pub fn rfc3339(t: &Option<prost_types::Timestamp>) -> Option<String> {
    let t = t.as_ref()?;
    let d = chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)?;
    Some(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_expand() {
        assert_eq!(model_name("fraud").unwrap(), "registeredModels/fraud");
        assert_eq!(
            model_name("registeredModels/fraud").unwrap(),
            "registeredModels/fraud"
        );
        for bad in ["", "registeredModels/", "fraud/3", "fraud@prod"] {
            assert!(model_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_expand() {
        let full = "registeredModels/m/versions/3";
        for s in [full, "m/3", "m/versions/3"] {
            assert_eq!(version_name(s).unwrap(), full, "{s:?}");
        }
        for s in ["registeredModels/m@prod", "m@prod"] {
            assert_eq!(version_name(s).unwrap(), "registeredModels/m@prod", "{s:?}");
        }
    }

    #[test]
    fn bad_versions_are_refused() {
        for s in [
            "",
            "m",
            "registeredModels/m",
            "m/",
            "/3",
            "m/x",
            "m/-1",
            "m@",
            "@prod",
            "m/3/4",
            "m/versions/3/x",
            "a/b@prod",
        ] {
            assert!(version_name(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn tags_parse() {
        assert_eq!(
            parse_tag("team=risk").unwrap(),
            ("team".into(), "risk".into())
        );
        assert_eq!(parse_tag("q=a=b").unwrap(), ("q".into(), "a=b".into()));
        assert_eq!(
            parse_tag("empty=").unwrap(),
            ("empty".into(), String::new())
        );
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("=x").is_err());
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-01-31T12:00:00.5+01:00").unwrap();
        assert_eq!(t.seconds, 1_769_857_200);
        assert_eq!(t.nanos, 500_000_000);
        let s = rfc3339(&Some(t)).unwrap();
        assert_eq!(s, "2026-01-31T11:00:00.500Z");
        assert_eq!(parse_time(&s).unwrap(), t);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(rfc3339(&None), None);
    }
}
