//! Input rules shared by every service: keys, texts, names, tags and page sizes.

use std::collections::{BTreeMap, HashMap};

use crate::Error;
use crate::limits::Limits;

/// Checks a metric/param/tag key: 1..=max bytes, printable, no leading/trailing space, and no
/// `/`-traversal (`..`) since keys appear in paths of some clients.
pub fn key(field: &str, k: &str, limits: &Limits) -> Result<(), Error> {
    if k.is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    if k.len() > limits.max_key_bytes {
        return Err(Error::limit(
            field,
            format!("at most {} bytes", limits.max_key_bytes),
        ));
    }
    if k.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    if k.trim() != k {
        return Err(Error::invalid_field(
            field,
            "must not start or end with whitespace",
        ));
    }
    if k.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(Error::invalid_field(
            field,
            "must not contain `.` or `..` path segments",
        ));
    }
    Ok(())
}

/// Checks a text value's length and that it holds no NUL.
pub fn text(field: &str, v: &str, max: usize) -> Result<(), Error> {
    if v.len() > max {
        return Err(Error::limit(field, format!("at most {max} bytes")));
    }
    if v.contains('\0') {
        return Err(Error::invalid_field(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// Bidirectional formatting characters (U+202A..U+202E, U+2066..U+2069) and the invisible
/// U+200B..U+200F, U+2060, U+FEFF: they make a name display as something else (a name ending in
/// `\u{202e}gnp.exe` shows as `exe.png`), so names refuse them like control characters.
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Checks a display name: 1..=500 bytes, no control or bidirectional/invisible formatting
/// characters.
pub fn name(field: &str, v: &str) -> Result<(), Error> {
    if v.trim().is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    if v.len() > 500 {
        return Err(Error::limit(field, "at most 500 bytes"));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    if v.chars().any(is_deceptive) {
        return Err(Error::invalid_field(
            field,
            "must not contain bidirectional or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Resolves a page size: 0 means `default`; above `max` is an error.
pub fn page_size(v: i32, default: usize, max: usize) -> Result<usize, Error> {
    match v {
        0 => Ok(default),
        v if v < 0 => Err(Error::invalid_field("page_size", "must not be negative")),
        v if v as usize > max => Err(Error::limit("page_size", format!("at most {max}"))),
        v => Ok(v as usize),
    }
}

/// Validates a tag map (count, keys, values) and returns it sorted. `field` names the map.
pub fn tag_map(
    tags: &HashMap<String, String>,
    field: &str,
    limits: &Limits,
) -> Result<BTreeMap<String, String>, Error> {
    if tags.len() > limits.max_tags_per_batch {
        return Err(Error::limit(
            field,
            format!("at most {} tags", limits.max_tags_per_batch),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        key(&format!("{field}[{k:?}]"), k, limits)?;
        text(&format!("{field}[{k:?}]"), v, limits.max_tag_value_bytes)?;
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let l = Limits::default();
        assert!(key("k", "val_loss", &l).is_ok());
        assert!(key("k", "a/b", &l).is_ok());
        for bad in ["", " x", "a\nb", "../x", "a/./b"] {
            assert_eq!(
                key("metrics[0].key", bad, &l).unwrap_err().violations[0].field,
                "metrics[0].key"
            );
        }
        assert_eq!(
            key("k", &"x".repeat(251), &l).unwrap_err().reason,
            "LIMIT_EXCEEDED"
        );
    }

    #[test]
    fn names_refuse_control_and_deceptive_characters() {
        assert!(name("display_name", "fraud model (v2) — ünïcödé 🙂").is_ok());
        for bad in [
            "",
            "  ",
            "a\0b",
            "tab\there",
            "\u{202e}gnp.exe",
            "a\u{200b}b",
            "\u{feff}x",
        ] {
            assert_eq!(
                name("display_name", bad).unwrap_err().violations[0].field,
                "display_name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0, 50, 100).unwrap(), 50);
        assert!(page_size(-1, 50, 100).is_err());
        assert!(page_size(101, 50, 100).is_err());
    }
}
