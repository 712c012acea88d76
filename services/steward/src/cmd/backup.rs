//! `steward backup DIR` and `steward restore DIR`: a consistent snapshot of the embedded mode
//! (SQLite database and local artifacts), and putting one back.
//!
//! Backup, safe while `steward up` runs on the same data dir:
//! 1. the database is copied with SQLite's `VACUUM INTO`, one read transaction, so the copy is
//!    a consistent snapshot even while writers commit;
//! 2. then the artifact files are copied. Artifacts are written (temp file, fsync, rename)
//!    before the database rows that reference them commit, so every artifact the snapshot
//!    references is already complete when it is copied; files that appear later are extra and
//!    harmless. Half-written upload temp files are skipped;
//! 3. `MANIFEST.json` lists every file with its size and SHA-256, written last: a backup
//!    without it is incomplete.
//!
//! Restore verifies every file against the manifest first, builds the new data dir next to
//! the target and renames it into place, so a failed or tampered restore writes nothing. An
//! existing data dir is kept, renamed aside, and only with `--force`. The restored database
//! is migrated by the next `steward up` if it is older than the binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_config::Config;

use super::up::load;
use crate::cli::ServerArgs;

/// `MANIFEST.json`'s `format`.
const FORMAT: &str = "steward-backup/1";
const MANIFEST: &str = "MANIFEST.json";
const DATABASE: &str = "steward.db";
const ARTIFACTS: &str = "artifacts";
/// Prefix of the local store's in-progress upload files.
const UPLOAD_TEMP_PREFIX: &str = ".steward-upload-";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    created: String,
    steward_version: String,
    /// The last migration applied to the backed-up database.
    schema: String,
    /// Relative paths (with `/`), sizes and digests; the database first.
    files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    path: String,
    bytes: u64,
    sha256: String,
}

/// The embedded-mode database file and artifact root of `cfg`, or why there are none.
fn embedded_paths(cfg: &Config, verb: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    if !cfg.is_sqlite() {
        bail!(
            "steward {verb} handles the embedded mode (SQLite and local artifacts); this configuration uses {}. For PostgreSQL and S3 follow \"Backups\" in README.md (pg_dump plus bucket versioning or replication)",
            steward_config::redact_url(&cfg.database_url)
        );
    }
    if cfg.s3.is_some() {
        bail!(
            "steward {verb} handles local artifacts; this configuration stores them in S3. Follow \"Backups\" in README.md"
        );
    }
    let rest = cfg
        .database_url
        .strip_prefix("sqlite://")
        .or_else(|| cfg.database_url.strip_prefix("sqlite:"))
        .unwrap_or(&cfg.database_url);
    let file = rest.split('?').next().unwrap_or(rest);
    if file.is_empty() || file == ":memory:" {
        bail!("the database {} is not a file", cfg.database_url);
    }
    Ok((PathBuf::from(file), cfg.local_artifact_root()))
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Every regular file under `root` as `(relative path with '/', absolute path, size)`,
/// sorted; upload temp files are skipped.
fn walk(root: &Path) -> anyhow::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(UPLOAD_TEMP_PREFIX) {
                    continue;
                }
                let rel = path
                    .strip_prefix(root)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path, entry.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads `src` to its end, hashing it (and writing it to `sink`, if any); returns its size and
/// SHA-256.
fn hash_through(
    mut src: impl std::io::Read,
    mut sink: Option<&mut std::fs::File>,
    pb: &ProgressBar,
) -> anyhow::Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    let mut n = 0_u64;
    loop {
        let k = src.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        if let Some(out) = sink.as_deref_mut() {
            out.write_all(&buf[..k])?;
        }
        n += k as u64;
        pb.inc(k as u64);
    }
    Ok((n, hex::encode(hash.finalize())))
}

/// Copies `from` to `to` (created, fsynced), returning its size and SHA-256.
fn copy_hashed(from: &Path, to: &Path, pb: &ProgressBar) -> anyhow::Result<(u64, String)> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let src = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut dst =
        std::fs::File::create_new(to).with_context(|| format!("creating {}", to.display()))?;
    let hashed = hash_through(src, Some(&mut dst), pb)?;
    dst.sync_all()?;
    Ok(hashed)
}

/// Size and SHA-256 of `path`.
fn hash_file(path: &Path, pb: &ProgressBar) -> anyhow::Result<(u64, String)> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    hash_through(f, None, pb)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// `steward backup DIR`.
pub async fn backup(dir: PathBuf, s: ServerArgs) -> anyhow::Result<()> {
    let cfg = load(None, false, &s)?;
    let (db_file, artifact_root) = embedded_paths(&cfg, "backup")?;
    if !db_file.exists() {
        bail!("no database at {} (nothing to back up)", db_file.display());
    }
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} is not empty; back up into a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    // 1. The database, as one consistent snapshot.
    let db = steward_storage::Db::connect(&cfg.database_url, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let schema = steward_storage::migrate::applied(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
        .last()
        .cloned()
        .unwrap_or_default();
    eprintln!("snapshotting the database {} ...", db_file.display());
    db.snapshot_sqlite_into(&std::path::absolute(dir.join(DATABASE))?)
        .await
        .map_err(|e| anyhow::anyhow!("snapshot of the database failed: {}", e.message))?;
    db.close().await;

    // 2. The artifacts, after the snapshot (see the module docs), and the digests.
    let dir2 = dir.clone();
    let manifest = tokio::task::spawn_blocking(move || -> anyhow::Result<Manifest> {
        let files = walk(&artifact_root)?;
        let total: u64 = files.iter().map(|f| f.2).sum();
        let pb = bar(total, &format!("copying {} artifact files", files.len()));
        let (db_bytes, db_sha) = hash_file(&dir2.join(DATABASE), &ProgressBar::hidden())?;
        let mut entries = vec![FileEntry {
            path: DATABASE.into(),
            bytes: db_bytes,
            sha256: db_sha,
        }];
        for (rel, abs, _) in files {
            let (bytes, sha256) = copy_hashed(&abs, &dir2.join(ARTIFACTS).join(&rel), &pb)?;
            entries.push(FileEntry {
                path: format!("{ARTIFACTS}/{rel}"),
                bytes,
                sha256,
            });
        }
        pb.finish_and_clear();
        Ok(Manifest {
            format: FORMAT.into(),
            created: chrono::Utc::now().to_rfc3339(),
            steward_version: env!("CARGO_PKG_VERSION").into(),
            schema,
            files: entries,
        })
    })
    .await??;

    // 3. The manifest, last.
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(MANIFEST))?;
    sync_dir(&dir)?;
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "backed up {} (schema {}) and {} artifact files, {} bytes in all, to {}",
        db_file.display(),
        manifest.schema,
        manifest.files.len() - 1,
        bytes,
        dir.display()
    );
    Ok(())
}

/// `steward restore DIR`.
pub async fn restore(dir: PathBuf, force: bool, s: ServerArgs) -> anyhow::Result<()> {
    let cfg = load(None, false, &s)?;
    let (db_file, artifact_root) = embedded_paths(&cfg, "restore")?;
    let data_dir = cfg.data_dir.clone();
    if db_file.parent() != Some(data_dir.as_path())
        || artifact_root.parent() != Some(data_dir.as_path())
    {
        bail!(
            "steward restore puts the database ({DATABASE}) and artifacts into the data dir; this configuration keeps the database at {} instead, not {}/{DATABASE}",
            db_file.display(),
            data_dir.display()
        );
    }
    let manifest_path = dir.join(MANIFEST);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).with_context(|| {
            format!(
                "{} has no {MANIFEST}: not a backup, or an incomplete one",
                dir.display()
            )
        })?)
        .with_context(|| format!("{} is not a backup manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{}: format {:?}, this steward reads {FORMAT:?}",
            manifest_path.display(),
            manifest.format
        );
    }
    if manifest.files.first().map(|f| f.path.as_str()) != Some(DATABASE) {
        bail!("{}: the backup has no database", manifest_path.display());
    }
    let occupied = data_dir.exists() && std::fs::read_dir(&data_dir)?.next().is_some();
    if occupied && !force {
        bail!(
            "{} is not empty; stop the server and pass --force to move it aside and restore",
            data_dir.display()
        );
    }

    // Verify and copy into a new directory beside the target, then swap it in.
    let parent = std::path::absolute(&data_dir)?
        .parent()
        .map(Path::to_path_buf)
        .context("the data dir has no parent directory")?;
    std::fs::create_dir_all(&parent)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "steward-data".into());
    let staging = parent.join(format!(".{name}.restore-{stamp}"));
    let dir2 = dir.clone();
    let staging2 = staging.clone();
    let files = manifest.files;
    let copied = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let total: u64 = files.iter().map(|f| f.bytes).sum();
        let pb = bar(total, &format!("verifying and restoring {} files", files.len()));
        let mut n = 0;
        for f in &files {
            let rel = Path::new(&f.path);
            let safe = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !safe {
                bail!("{MANIFEST} names a path outside the backup: {:?}", f.path);
            }
            let (bytes, sha256) = copy_hashed(&dir2.join(rel), &staging2.join(rel), &pb)?;
            if bytes != f.bytes || sha256 != f.sha256 {
                bail!(
                    "{} does not match the manifest ({bytes} bytes, sha256 {sha256}; expected {} bytes, sha256 {}): the backup is damaged",
                    f.path,
                    f.bytes,
                    f.sha256
                );
            }
            n += bytes;
        }
        pb.finish_and_clear();
        Ok(n)
    })
    .await?;
    let copied = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    sync_dir(&staging)?;
    let mut aside = None;
    if data_dir.exists() {
        let moved = parent.join(format!("{name}.pre-restore-{stamp}"));
        std::fs::rename(&data_dir, &moved)
            .with_context(|| format!("moving {} aside", data_dir.display()))?;
        aside = Some(moved);
    }
    std::fs::rename(&staging, &data_dir)
        .with_context(|| format!("moving the restored data into {}", data_dir.display()))?;
    sync_dir(&parent)?;
    println!(
        "restored {} (schema {}, taken {}), {copied} bytes, into {}",
        dir.display(),
        manifest.schema,
        manifest.created,
        data_dir.display()
    );
    if let Some(moved) = aside {
        println!("the previous data dir is kept at {}", moved.display());
    }
    Ok(())
}
