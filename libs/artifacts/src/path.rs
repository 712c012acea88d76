//! Artifact paths, parsed once at the API boundary into validated relative paths.
//!
//! An [`ArtifactPath`] can be joined under any root directory or bucket prefix without escaping
//! it: it is relative, has no `.` or `..` segments, no empty segments and no separators other
//! than `/`. Characters are allow-listed rather than deny-listed: Unicode letters and digits,
//! the space, and `- _ . + = , @ ( )`. In particular `%` is rejected outright: paths are never
//! percent-decoded, so rejecting `%` rules out every encoded traversal trick (`%2e%2e`,
//! `%2E%2e%2f`, double-encoded `%252e%252e`) without having to reason about decoding layers.

use std::fmt;

use steward_common::{Error, Result};

/// Longest accepted artifact path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 1024;

/// Longest accepted path segment (file or directory name), in bytes of UTF-8.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Punctuation allowed in paths besides `/`, letters, digits and the space.
const ALLOWED_PUNCTUATION: &[char] = &['-', '_', '.', '+', '=', ',', '@', '(', ')'];

/// A validated, relative artifact path such as `model/model.onnx`.
///
/// Segments are separated by `/`. See the [module documentation](self) for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactPath(String);

/// A validated directory prefix used to list artifacts: either empty (every artifact) or a
/// valid path followed by exactly one `/`, such as `model/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactPrefix(String);

impl ArtifactPath {
    /// Parses and validates `raw`; errors are `INVALID_ARGUMENT` naming `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self> {
        if raw.is_empty() {
            return Err(Error::invalid_field(
                field,
                "artifact path must not be empty",
            ));
        }
        check(raw, field)?;
        Ok(Self(raw.to_owned()))
    }

    /// Parses a directory prefix for listing: empty means the root; one trailing `/` is allowed
    /// (`model` and `model/` are the same prefix). Otherwise the rules of [`ArtifactPath::parse`]
    /// apply.
    pub fn parse_prefix(raw: &str, field: &str) -> Result<ArtifactPrefix> {
        if raw.is_empty() {
            return Ok(ArtifactPrefix::root());
        }
        let dir = raw.strip_suffix('/').unwrap_or(raw);
        if dir.is_empty() {
            return Err(Error::invalid_field(
                field,
                "artifact prefix must be relative: leave it empty to list from the root",
            ));
        }
        check(dir, field)?;
        Ok(ArtifactPrefix(format!("{dir}/")))
    }

    /// The path as text, segments separated by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments of the path (directory names, then the file name).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl ArtifactPrefix {
    /// The empty prefix, matching every artifact.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// The prefix as text: empty, or ending with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty prefix.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `path` lies under this prefix.
    pub fn contains(&self, path: &ArtifactPath) -> bool {
        path.as_str().starts_with(&self.0)
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ArtifactPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a non-empty path against every rule, reporting the first one broken.
pub(crate) fn check(raw: &str, field: &str) -> Result<()> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(Error::limit(
            field,
            format!(
                "artifact path is {} bytes long; the limit is {MAX_PATH_BYTES}",
                raw.len()
            ),
        ));
    }
    let bad = |why: String| {
        Err(Error::invalid_field(
            field,
            format!("artifact path {raw:?} {why}"),
        ))
    };
    let bytes = raw.as_bytes();
    if raw.starts_with('/') || raw.starts_with('\\') {
        return bad("must be relative: it must not start with '/' or '\\'".into());
    }
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return bad("must be relative: drive letters such as 'C:' are not allowed".into());
    }
    if let Some(c) = raw.chars().find(|&c| !allowed_char(c)) {
        return bad(describe_char(c));
    }
    for segment in raw.split('/') {
        if segment.is_empty() {
            return bad("must not contain empty segments ('//' or a trailing '/')".into());
        }
        if segment.bytes().all(|b| b == b'.') {
            return bad(format!(
                "must not contain the segment {segment:?}: '.' and '..' are not allowed"
            ));
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(Error::limit(
                field,
                format!(
                    "a segment of the artifact path is {} bytes long; the limit is \
                     {MAX_SEGMENT_BYTES}",
                    segment.len()
                ),
            ));
        }
        if segment.starts_with(' ') || segment.ends_with(' ') {
            return bad(format!(
                "has the segment {segment:?}, which starts or ends with a space"
            ));
        }
    }
    Ok(())
}

fn allowed_char(c: char) -> bool {
    c == '/' || c == ' ' || c.is_alphanumeric() || ALLOWED_PUNCTUATION.contains(&c)
}

fn describe_char(c: char) -> String {
    match c {
        '%' => "must not contain '%': paths are not percent-decoded, so '%' is rejected \
                (this also rules out encoded traversal such as %2e%2e)"
            .into(),
        '\\' => "must not contain '\\': use '/' to separate directories".into(),
        ';' | '?' | '#' => format!("must not contain {c:?}"),
        c if c.is_control() => format!(
            "must not contain control characters (found U+{:04X})",
            c as u32
        ),
        c => format!(
            "must not contain {c:?} (U+{:04X}); allowed are letters, digits, spaces, '/' and \
             - _ . + = , @ ( )",
            c as u32
        ),
    }
}

#[cfg(test)]
mod tests;
