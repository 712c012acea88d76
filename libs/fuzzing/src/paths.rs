//! The `artifact_paths` entry point: artifact paths, listing prefixes and object keys.

use std::path::{Component, Path};

use steward_artifacts::{ArtifactPath, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, ObjectKey};

use crate::check;
use crate::input::Input;

const EXPERIMENT: &str = "0190a1b2c3d4e5f60718293a4b5c6d7e";
const RUN: &str = "0190a1b2c3d4e5f60718293a4b5c6d7f";

/// Parses the first text field of `data` (up to `0xFF`) as an artifact path and as a listing
/// prefix, builds the run artifact key of an accepted path, and uses the next fields as an
/// experiment id, a run id and a chunk digest.
///
/// Invariants checked besides "no panic":
/// - an accepted path is non-empty, at most [`MAX_PATH_BYTES`] long, relative (no leading `/`
///   or `\`, no drive letter), has no empty, `.` or `..` segment, no segment over
///   [`MAX_SEGMENT_BYTES`], and no `\`, `%`, NUL or other control character; joined under a
///   root directory it only adds normal components, so it stays under the root;
/// - its object key is the run's prefix followed by the path, has only safe segments, and
///   gives the path back;
/// - a listing prefix is empty or one valid path plus `/`, and contains the paths under it;
/// - object keys are only built from well-formed ids and digests;
/// - every refusal is `INVALID_ARGUMENT` naming the field.
pub fn artifact_paths(data: &[u8]) {
    let mut input = Input::new(data);
    let raw = input.text();
    path(&raw);
    prefix(&raw);
    let experiment = input.text();
    let run = input.text();
    let digest = input.text();
    keys(&raw, &experiment, &run);
    chunk(&digest);
    // The raw field itself as ids and digests, too: most inputs have a single field.
    keys("model.onnx", &raw, RUN);
    chunk(&raw);
}

/// Checks the rules of an accepted path (`ArtifactPath`'s documentation).
pub(crate) fn assert_safe(raw: &str) {
    assert!(!raw.is_empty() && raw.len() <= MAX_PATH_BYTES, "{raw:?}");
    assert!(!raw.starts_with('/') && !raw.starts_with('\\'), "{raw:?}");
    let b = raw.as_bytes();
    assert!(
        !(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'),
        "{raw:?} has a drive letter"
    );
    assert!(
        !raw.chars()
            .any(|c| c == '\\' || c == '%' || c == '\0' || c.is_control()),
        "{raw:?} has a forbidden character"
    );
    for seg in raw.split('/') {
        assert!(!seg.is_empty(), "{raw:?} has an empty segment");
        assert!(seg != "." && seg != "..", "{raw:?} has a dot segment");
        assert!(
            !seg.bytes().all(|b| b == b'.'),
            "{raw:?} has a dots-only segment"
        );
        assert!(seg.len() <= MAX_SEGMENT_BYTES, "{raw:?} has a long segment");
        assert_eq!(
            seg.trim_matches(' '),
            seg,
            "{raw:?} has a segment with outer spaces"
        );
    }
    let root = Path::new("/srv/steward/artifacts");
    let joined = root.join(raw);
    assert!(joined.starts_with(root), "{raw:?} escapes the root");
    assert!(
        Path::new(raw)
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{raw:?} has a non-normal path component"
    );
}

fn path(raw: &str) {
    match ArtifactPath::parse(raw, "path") {
        Ok(p) => {
            assert_safe(raw);
            assert_eq!(p.as_str(), raw);
            assert_eq!(p.segments().collect::<Vec<_>>().join("/"), raw);
            assert_eq!(Some(p.file_name()), raw.rsplit('/').next());
            let key = ObjectKey::for_run_artifact(EXPERIMENT, RUN, &p).expect("valid ids");
            let prefix = ObjectKey::run_prefix(EXPERIMENT, RUN).expect("valid ids");
            assert_eq!(key.as_str(), format!("{prefix}{raw}"));
            assert_eq!(key.artifact_path(), raw);
            assert!(
                key.segments()
                    .all(|s| !s.is_empty() && s != "." && s != ".."),
                "{key:?}"
            );
            // Every directory of the path is a prefix containing it.
            let mut dir = String::new();
            for seg in raw
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                dir.push_str(seg);
                dir.push('/');
                let pre = ArtifactPath::parse_prefix(&dir, "prefix").expect("a directory");
                assert!(pre.contains(&p), "{pre:?} should contain {p:?}");
            }
        }
        Err(e) => check::invalid(&e, "path"),
    }
}

fn prefix(raw: &str) {
    match ArtifactPath::parse_prefix(raw, "prefix") {
        Ok(p) if raw.is_empty() => assert!(p.is_root() && p.as_str().is_empty()),
        Ok(p) => {
            let dir = p
                .as_str()
                .strip_suffix('/')
                .unwrap_or_else(|| panic!("{p:?} does not end with /"));
            assert!(raw == dir || raw == p.as_str(), "{raw:?} became {p:?}");
            assert_safe(dir);
            let inside = ArtifactPath::parse(&format!("{dir}/x"), "path");
            if let Ok(inside) = inside {
                assert!(p.contains(&inside));
            }
            if let Ok(itself) = ArtifactPath::parse(dir, "path") {
                assert!(!p.contains(&itself), "{p:?} contains its own directory");
            }
        }
        Err(e) => check::invalid(&e, "prefix"),
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn keys(raw: &str, experiment: &str, run: &str) {
    let Ok(p) = ArtifactPath::parse(raw, "path") else {
        return;
    };
    match ObjectKey::for_run_artifact(experiment, run, &p) {
        Ok(key) => {
            assert!(is_hex(experiment, 32) && is_hex(run, 32), "{key:?}");
            assert_eq!(
                key.as_str(),
                format!("experiments/{experiment}/runs/{run}/artifacts/{raw}")
            );
        }
        Err(e) if !is_hex(experiment, 32) => check::invalid(&e, "experiment_id"),
        Err(e) => {
            assert!(!is_hex(run, 32), "refused: {e:?}");
            check::invalid(&e, "run_id");
        }
    }
}

fn chunk(digest: &str) {
    match ObjectKey::for_chunk(digest) {
        Ok(key) => {
            assert!(is_hex(digest, 64), "{digest:?}");
            assert_eq!(
                key.as_str(),
                format!("cas/sha256/{}/{digest}", &digest[..2])
            );
            assert_eq!(key.artifact_path(), digest);
        }
        Err(e) => {
            assert!(!is_hex(digest, 64), "{digest:?} refused");
            check::invalid(&e, "digest");
        }
    }
}
