use std::path::{Component, Path};

use proptest::prelude::*;
use steward_common::ErrorKind;

use super::*;

#[test]
fn accepts_ordinary_paths() {
    for raw in [
        "model/model.onnx",
        "environment/requirements.txt",
        "MLmodel",
        ".gitignore",
        "données/modèle final.onnx",
        "模型/权重.bin",
        "plots/roc (1).png",
        "a-b_c.d+e=f,g@h",
        "v1.2.3/model..onnx",
        "x/.hidden/y",
    ] {
        let p = ArtifactPath::parse(raw, "path").unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(p.as_str(), raw);
        assert_eq!(p.to_string(), raw);
    }
    let p = ArtifactPath::parse("model/model.onnx", "path").unwrap();
    assert_eq!(p.segments().collect::<Vec<_>>(), ["model", "model.onnx"]);
    assert_eq!(p.file_name(), "model.onnx");
}

#[test]
fn rejects_every_trick_naming_the_field() {
    let long_segment = "a".repeat(MAX_SEGMENT_BYTES + 1);
    let long_path = vec!["abcdefgh"; 114].join("/"); // 114 * 9 - 1 = 1025 bytes
    assert_eq!(long_path.len(), MAX_PATH_BYTES + 1);
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("/etc/passwd", "relative"),
        ("/x", "relative"),
        ("C:\\x", "drive letters"),
        ("c:/x", "drive letters"),
        ("\\\\server\\share", "relative"),
        ("\\x", "relative"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        (".", "'.'"),
        ("./a", "'.'"),
        ("a/./b", "'.'"),
        ("a/...", "'..'"),
        ("a//b", "empty segments"),
        ("a/", "empty segments"),
        ("%2e%2e/x", "'%'"),
        ("%2E%2e%2fetc", "'%'"),
        ("%252e%252e/x", "'%'"),
        ("a%00b", "'%'"),
        ("a\\b", "'\\'"),
        ("..\\x", "'\\'"),
        ("a\0b", "control characters"),
        ("a\nb", "control characters"),
        ("a\u{7f}b", "control characters"),
        ("a;b", "';'"),
        ("a?b", "'?'"),
        ("a#b", "'#'"),
        ("a:b", "drive letters"),
        ("ab:c", "':'"),
        ("a*b", "'*'"),
        ("a\u{202e}b", "U+202E"),
        ("\u{ff0e}\u{ff0e}/x", "U+FF0E"),
        ("a\u{2215}b", "U+2215"),
        (" a/b", "space"),
        ("a /b", "space"),
        (&long_segment, "limit is 255"),
        (&long_path, "limit is 1024"),
    ];
    for (raw, expected) in cases {
        let err = ArtifactPath::parse(raw, "request.path").expect_err(raw);
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{raw:?}");
        assert_eq!(err.violations.len(), 1, "{raw:?}");
        assert_eq!(err.violations[0].field, "request.path", "{raw:?}");
        assert!(
            err.violations[0].description.contains(expected),
            "{raw:?}: {:?} should mention {expected:?}",
            err.violations[0].description
        );
    }
}

#[test]
fn limits_are_inclusive() {
    let segment = "é".repeat(MAX_SEGMENT_BYTES / 2) + "a"; // 255 bytes
    assert_eq!(segment.len(), MAX_SEGMENT_BYTES);
    ArtifactPath::parse(&segment, "path").unwrap();
    let last_dir = "c".repeat(MAX_SEGMENT_BYTES - 1);
    let path = format!("{segment}/{segment}/{segment}/{last_dir}/b");
    assert_eq!(path.len(), MAX_PATH_BYTES);
    ArtifactPath::parse(&path, "path").unwrap();
    let err = ArtifactPath::parse(&format!("{path}x"), "path").unwrap_err();
    assert_eq!(err.reason, "LIMIT_EXCEEDED");
}

#[test]
fn prefixes() {
    assert!(ArtifactPath::parse_prefix("", "prefix").unwrap().is_root());
    let p = ArtifactPath::parse_prefix("model", "prefix").unwrap();
    assert_eq!(p.as_str(), "model/");
    assert_eq!(ArtifactPath::parse_prefix("model/", "prefix").unwrap(), p);
    assert_eq!(
        ArtifactPath::parse_prefix("a/b/", "prefix")
            .unwrap()
            .as_str(),
        "a/b/"
    );
    assert!(p.contains(&ArtifactPath::parse("model/model.onnx", "path").unwrap()));
    assert!(!p.contains(&ArtifactPath::parse("models/x", "path").unwrap()));
    assert!(ArtifactPrefix::root().contains(&ArtifactPath::parse("x", "path").unwrap()));
    for raw in ["/", "//", "a//", "../", "a/../", "%2e%2e/", "/a/", "a\\"] {
        let err = ArtifactPath::parse_prefix(raw, "prefix").expect_err(raw);
        assert_eq!(err.violations[0].field, "prefix", "{raw:?}");
    }
}

/// Strings built mostly from the characters that matter for traversal.
fn tricky() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "/", "\\", ".", "..", "%", "%2e", "%2f", "%25", "a", "b", "é", " ", ":", "C:", "\0", ";",
        "?", "#", "\u{ff0e}", "\u{2215}", "-", "_", "~",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
}

/// A valid segment: allowed characters, not all dots, no outer spaces.
fn valid_segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_\\-+=,@()é模]([a-zA-Z0-9 ._\\-+=,@()é模]{0,20}[a-zA-Z0-9._\\-+=,@()é模])?"
}

fn assert_confined(p: &ArtifactPath) {
    let rel = Path::new(p.as_str());
    assert!(rel.is_relative(), "{p:?}");
    assert!(
        rel.components().all(|c| matches!(c, Component::Normal(_))),
        "{p:?}"
    );
    let root = Path::new("/srv/steward/artifacts");
    let joined = root.join(p.as_str());
    assert!(joined.starts_with(root), "{p:?}");
    let below: Vec<_> = joined.strip_prefix(root).unwrap().components().collect();
    assert_eq!(below.len(), p.segments().count(), "{p:?}");
    assert!(
        below.iter().all(|c| matches!(c, Component::Normal(_))),
        "{p:?}"
    );
    assert!(
        p.segments().all(|s| s != ".." && s != "." && !s.is_empty()),
        "{p:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_and_accepted_paths_stay_under_the_root(raw in tricky()) {
        if let Ok(p) = ArtifactPath::parse(&raw, "path") {
            prop_assert_eq!(p.as_str(), raw.as_str());
            assert_confined(&p);
        }
        if let Ok(prefix) = ArtifactPath::parse_prefix(&raw, "prefix") {
            prop_assert!(prefix.is_root() || prefix.as_str().ends_with('/'));
            if !prefix.is_root() {
                let dir = prefix.as_str().trim_end_matches('/');
                assert_confined(&ArtifactPath::parse(dir, "path").unwrap());
            }
        }
    }

    #[test]
    fn parse_never_panics_on_any_string(raw in any::<String>()) {
        if let Ok(p) = ArtifactPath::parse(&raw, "path") {
            assert_confined(&p);
        }
        let _ = ArtifactPath::parse_prefix(&raw, "prefix");
    }

    #[test]
    fn valid_paths_are_accepted_unchanged(segments in prop::collection::vec(valid_segment(), 1..8)) {
        let raw = segments.join("/");
        let p = ArtifactPath::parse(&raw, "path").unwrap();
        prop_assert_eq!(p.as_str(), raw.as_str());
        assert_confined(&p);
        let prefix = ArtifactPath::parse_prefix(&segments[..segments.len() - 1].join("/"), "p")
            .unwrap();
        prop_assert!(prefix.contains(&p));
    }
}
