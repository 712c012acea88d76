//! Registry-specific input rules (the generic ones are in `steward_common::validate`).

use steward_common::Error;

use super::model::{DTYPES, EXTERNAL_SCHEMES, FORMATS, Signature, TensorSpec};

/// Max description length.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Max tensors per side of a signature.
pub const MAX_TENSORS: usize = 1_000;
/// Max dimensions of a tensor.
pub const MAX_DIMS: usize = 32;
/// Max length of an external URI.
pub const MAX_URI: usize = 2_048;

/// A model format from [`FORMATS`]; empty means `custom`.
pub fn format(field: &str, v: &str) -> Result<String, Error> {
    if v.is_empty() {
        return Ok("custom".into());
    }
    let lower = v.to_ascii_lowercase();
    if FORMATS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Error::invalid_field(
            field,
            format!(
                "{:?} is not a known model format ({})",
                v.chars().take(40).collect::<String>(),
                FORMATS.join(", ")
            ),
        ))
    }
}

fn tensor(field: &str, t: &TensorSpec) -> Result<(), Error> {
    if t.name.is_empty() || t.name.len() > 256 || t.name.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            format!("{field}.name"),
            "must be 1-256 characters without control characters",
        ));
    }
    if !DTYPES.contains(&t.dtype.as_str()) {
        return Err(Error::invalid_field(
            format!("{field}.dtype"),
            format!(
                "{:?} is not a known dtype ({})",
                t.dtype.chars().take(40).collect::<String>(),
                DTYPES.join(", ")
            ),
        ));
    }
    if t.shape.len() > MAX_DIMS {
        return Err(Error::limit(
            format!("{field}.shape"),
            format!("at most {MAX_DIMS} dimensions"),
        ));
    }
    if let Some(d) = t.shape.iter().find(|d| **d < -1 || **d == 0) {
        return Err(Error::invalid_field(
            format!("{field}.shape"),
            format!("dimension {d} is invalid: use a positive size or -1 for a dynamic one"),
        ));
    }
    Ok(())
}

/// A signature: known dtypes, sane shapes, unique names per side.
pub fn signature(field: &str, s: &Signature) -> Result<(), Error> {
    for (side, list) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
        if list.len() > MAX_TENSORS {
            return Err(Error::limit(
                format!("{field}.{side}"),
                format!("at most {MAX_TENSORS} tensors"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in list.iter().enumerate() {
            let f = format!("{field}.{side}[{i}]");
            tensor(&f, t)?;
            if !seen.insert(t.name.as_str()) {
                return Err(Error::invalid_field(
                    format!("{f}.name"),
                    format!("duplicate tensor name {:?}", t.name),
                ));
            }
        }
    }
    Ok(())
}

/// `sha256:` followed by 64 lowercase hex characters.
pub fn digest(field: &str, v: &str) -> Result<(), Error> {
    let ok = v.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            "must be \"sha256:\" followed by 64 lowercase hex characters",
        ))
    }
}

/// An external source URI: an allowed scheme, a host or bucket, no credentials, no control
/// characters. The registry never fetches it; serving systems do.
pub fn external_uri(field: &str, v: &str) -> Result<(), Error> {
    if v.len() > MAX_URI {
        return Err(Error::limit(field, format!("at most {MAX_URI} bytes")));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid_field(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(Error::invalid_field(
            field,
            format!(
                "must be a URI with one of the schemes {}",
                EXTERNAL_SCHEMES.join(", ")
            ),
        ));
    };
    let scheme_l = scheme.to_ascii_lowercase();
    if !EXTERNAL_SCHEMES.contains(&scheme_l.as_str()) {
        return Err(Error::invalid_field(
            field,
            format!(
                "scheme {:?} is not allowed (allowed: {})",
                scheme.chars().take(20).collect::<String>(),
                EXTERNAL_SCHEMES.join(", ")
            ),
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::invalid_field(field, "must name a host or bucket"));
    }
    if authority.contains('@') {
        return Err(Error::invalid_field(
            field,
            "must not carry credentials (user@host)",
        ));
    }
    if rest.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(Error::invalid_field(
            field,
            "must not contain `.` or `..` path segments",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_uris() {
        for ok in [
            "s3://bucket/models/fraud/7",
            "hf://org/model",
            "https://models.example.com/m.onnx",
        ] {
            external_uri("u", ok).unwrap();
        }
        for bad in [
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "runs:/abc/model",
            "http://169.254.169.254/latest",
            "/local/path",
            "s3://",
            "s3://user:pw@bucket/x",
            "s3://bucket/../other",
            "s3://bucket/a\0b",
            "s3://bucket/a b",
        ] {
            assert_eq!(
                external_uri("u", bad).unwrap_err().violations[0].field,
                "u",
                "{bad}"
            );
        }
    }

    #[test]
    fn signatures_and_digests() {
        let t = |n: &str, d: &str, s: Vec<i64>| TensorSpec {
            name: n.into(),
            dtype: d.into(),
            shape: s,
        };
        signature(
            "s",
            &Signature {
                inputs: vec![t("x", "float32", vec![-1, 4])],
                outputs: vec![],
            },
        )
        .unwrap();
        for (sig, field) in [
            (
                Signature {
                    inputs: vec![t("x", "float", vec![])],
                    outputs: vec![],
                },
                "s.inputs[0].dtype",
            ),
            (
                Signature {
                    inputs: vec![t("x", "int8", vec![0])],
                    outputs: vec![],
                },
                "s.inputs[0].shape",
            ),
            (
                Signature {
                    inputs: vec![],
                    outputs: vec![t("y", "int8", vec![]), t("y", "int8", vec![])],
                },
                "s.outputs[1].name",
            ),
        ] {
            assert_eq!(signature("s", &sig).unwrap_err().violations[0].field, field);
        }
        digest("d", &format!("sha256:{}", "a".repeat(64))).unwrap();
        assert!(digest("d", &format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(digest("d", "md5:abc").is_err());
        assert_eq!(format("f", "ONNX").unwrap(), "onnx");
        assert!(format("f", "pickle").is_err());
    }
}
