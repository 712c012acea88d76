//! `steward datasets ...` and `steward reproduce`: dataset versions pushed and pulled with
//! progress bars, every byte verified against its digest.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::Digest as _;
use steward_proto::registry as rpb;
use steward_proto::tracking as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::output::{bytes, table, time};
use super::{TrackingClient, registry_client, status_err, tracking_client};
use crate::cli::{ClientArgs, DatasetsCmd};

const CHUNK: usize = 1024 * 1024;

fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn dataset_name(s: &str) -> String {
    if s.starts_with("datasets/") {
        s.to_string()
    } else {
        format!("datasets/{s}")
    }
}

/// (relative path with '/', local file) of every file under `paths`, sorted by path.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = BTreeMap::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_file() {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} has no usable file name", p.display()))?;
            if out.insert(name.to_string(), p.clone()).is_some() {
                bail!("two files would be stored as {name:?}");
            }
        } else {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir)? {
                    let e = e?;
                    let ft = e.file_type()?;
                    if ft.is_dir() {
                        stack.push(e.path());
                    } else if ft.is_file() {
                        let rel = e.path().strip_prefix(p)?.to_path_buf();
                        let parts: Vec<String> = rel
                            .components()
                            .map(|c| c.as_os_str().to_str().map(str::to_string))
                            .collect::<Option<_>>()
                            .with_context(|| format!("{} is not UTF-8", rel.display()))?;
                        let key = parts.join("/");
                        if out.insert(key.clone(), e.path()).is_some() {
                            bail!("two files would be stored as {key:?}");
                        }
                    }
                }
            }
        }
    }
    if out.is_empty() {
        bail!("no files to push");
    }
    Ok(out.into_iter().collect())
}

async fn sha256_file(p: &Path, progress: &ProgressBar) -> anyhow::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(p)
        .await
        .with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
        progress.inc(k as u64);
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Runs a datasets command.
pub async fn run(cmd: DatasetsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = tracking_client(c).await?;
    match cmd {
        DatasetsCmd::Push {
            dataset,
            paths,
            description,
            tags,
            skip_profile,
        } => {
            let files = collect_files(&paths)?;
            let mut tag_map = std::collections::HashMap::new();
            for t in &tags {
                let (k, v) = super::names::parse_tag(t).map_err(anyhow::Error::msg)?;
                tag_map.insert(k, v);
            }
            let total: u64 = files
                .iter()
                .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .sum();
            // Digests first: the service checks every file and the whole manifest against them.
            let hashing = bar(total, "hash");
            let mut hashed = Vec::with_capacity(files.len());
            for (rel, p) in &files {
                let (sha, size) = sha256_file(p, &hashing).await?;
                hashed.push((rel.clone(), p.clone(), sha, size));
            }
            hashing.finish_and_clear();
            let entries: Vec<steward_cas::ManifestEntry<'_>> = hashed
                .iter()
                .map(|(rel, _, sha, size)| steward_cas::ManifestEntry {
                    path: rel,
                    size: *size,
                    sha256: sha,
                })
                .collect();
            let digest = steward_cas::manifest_digest(&entries);
            let v = client
                .create_dataset_version(pb::CreateDatasetVersionRequest {
                    parent: dataset_name(&dataset),
                    version: Some(pb::DatasetVersion {
                        description,
                        tags: tag_map,
                        ..Default::default()
                    }),
                    request_id: super::experiments::uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let progress = bar(total, "push");
            for (rel, p, sha, size) in &hashed {
                upload(&mut client, &v.name, rel, p, sha, *size, &progress).await?;
            }
            progress.finish_and_clear();
            let spinner = ProgressBar::new_spinner();
            spinner.set_message(if skip_profile {
                "committing".to_string()
            } else {
                "committing (schema and profile)".to_string()
            });
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            let done = client
                .commit_dataset_version(pb::CommitDatasetVersionRequest {
                    name: v.name.clone(),
                    expected_file_count: hashed.len() as i64,
                    expected_digest: digest,
                    skip_profile,
                    request_id: super::experiments::uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            spinner.finish_and_clear();
            println!(
                "{} committed: {} files, {}, {} new ({})",
                done.name,
                done.file_count,
                bytes(done.size_bytes),
                bytes(done.new_bytes),
                done.digest
            );
        }
        DatasetsCmd::List { dataset: None } => {
            let mut t = table(&[
                "DATASET",
                "VERSIONS",
                "LATEST",
                "SIZE",
                "DIGEST",
                "COMMITTED",
            ]);
            let mut token = String::new();
            loop {
                let page = client
                    .list_datasets(pb::ListDatasetsRequest {
                        page_size: 200,
                        page_token: token,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                for d in &page.datasets {
                    let l = d.latest_version.clone().unwrap_or_default();
                    t.add_row(vec![
                        d.name.clone(),
                        d.version_count.to_string(),
                        if l.version > 0 {
                            l.version.to_string()
                        } else {
                            "-".into()
                        },
                        bytes(l.size_bytes),
                        l.digest.clone(),
                        time(&l.commit_time),
                    ]);
                }
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            println!("{t}");
        }
        DatasetsCmd::List {
            dataset: Some(dataset),
        } => {
            let mut t = table(&[
                "VERSION", "STATE", "FILES", "SIZE", "NEW", "DIGEST", "CREATED", "BY",
            ]);
            let mut token = String::new();
            loop {
                let page = client
                    .list_dataset_versions(pb::ListDatasetVersionsRequest {
                        parent: dataset_name(&dataset),
                        page_size: 200,
                        page_token: token,
                        show_pending: true,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                for v in &page.versions {
                    t.add_row(vec![
                        v.name.clone(),
                        state(v.state).to_string(),
                        v.file_count.to_string(),
                        bytes(v.size_bytes),
                        bytes(v.new_bytes),
                        v.digest.clone(),
                        time(&v.create_time),
                        v.creator.clone(),
                    ]);
                }
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            println!("{t}");
        }
        DatasetsCmd::Show { name: version } => {
            let v = client
                .get_dataset_version(pb::GetDatasetVersionRequest {
                    name: version.clone(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                println!("{}", serde_json::to_string_pretty(&version_json(&v))?);
                return Ok(());
            }
            println!(
                "{}  {}  {} files  {}  digest {}",
                v.name,
                state(v.state),
                v.file_count,
                bytes(v.size_bytes),
                v.digest
            );
            if !v.description.is_empty() {
                println!("{}", v.description);
            }
            let files = all_files(&mut client, &v.name).await?;
            let mut t = table(&["PATH", "SIZE", "SHA256", "CHUNKS", "COLUMNS"]);
            for f in &files {
                t.add_row(vec![
                    f.path.clone(),
                    bytes(f.size_bytes),
                    f.sha256.clone(),
                    f.chunk_count.to_string(),
                    f.profile
                        .as_ref()
                        .map(|p| format!("{} rows x {}", p.num_rows, p.features.len()))
                        .unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        DatasetsCmd::Diff { base, target } => {
            let d = client
                .diff_dataset_versions(pb::DiffDatasetVersionsRequest { base, target })
                .await
                .map_err(status_err)?
                .into_inner();
            print_diff(&d);
        }
        DatasetsCmd::Pull { name: version, dir } => {
            let (v, n, size) = pull(&mut client, &version, &dir).await?;
            println!(
                "{v} pulled into {}: {n} files, {}, every file verified",
                dir.display(),
                bytes(size)
            );
        }
        DatasetsCmd::Delete { name: version } => {
            let r = client
                .delete_dataset_version(pb::DeleteDatasetVersionRequest {
                    name: version.clone(),
                    request_id: super::experiments::uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!(
                "{version} deleted; reclaimed {} in {} chunks",
                bytes(r.reclaimed_bytes),
                r.reclaimed_chunks
            );
        }
    }
    Ok(())
}

fn state(s: i32) -> &'static str {
    match pb::DatasetVersionState::try_from(s) {
        Ok(pb::DatasetVersionState::Pending) => "PENDING",
        Ok(pb::DatasetVersionState::Committed) => "COMMITTED",
        _ => "?",
    }
}

fn version_json(v: &pb::DatasetVersion) -> serde_json::Value {
    serde_json::json!({
        "name": v.name,
        "state": state(v.state),
        "digest": v.digest,
        "file_count": v.file_count,
        "size_bytes": v.size_bytes,
        "new_bytes": v.new_bytes,
        "schema_json": v.schema_json,
        "description": v.description,
        "creator": v.creator,
    })
}

#[allow(clippy::too_many_arguments)]
async fn upload(
    client: &mut TrackingClient,
    version: &str,
    rel: &str,
    p: &Path,
    sha: &str,
    size: u64,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut f = tokio::fs::File::open(p)
        .await
        .with_context(|| format!("cannot open {}", p.display()))?;
    let header = pb::UploadDatasetFileRequest {
        part: Some(pb::upload_dataset_file_request::Part::Header(
            pb::DatasetFileHeader {
                version: version.to_string(),
                path: rel.to_string(),
                expected_sha256: sha.to_string(),
                expected_size: Some(size as i64),
            },
        )),
    };
    let p2 = progress.clone();
    let body = async_stream::stream! {
        yield header;
        let mut buf = vec![0u8; CHUNK];
        loop {
            match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    p2.inc(n as u64);
                    yield pb::UploadDatasetFileRequest {
                        part: Some(pb::upload_dataset_file_request::Part::Chunk(
                            bytes::Bytes::copy_from_slice(&buf[..n]),
                        )),
                    };
                }
                // The server then sees fewer bytes than expected_size and stores nothing.
                Err(_) => break,
            }
        }
    };
    client
        .upload_dataset_file(body)
        .await
        .map_err(status_err)
        .with_context(|| format!("uploading {rel}"))?;
    Ok(())
}

async fn all_files(
    client: &mut TrackingClient,
    version: &str,
) -> anyhow::Result<Vec<pb::DatasetFile>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_dataset_files(pb::ListDatasetFilesRequest {
                version: version.to_string(),
                page_size: 1000,
                page_token: token,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        out.extend(page.files);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// A relative path from the server, checked again here before it names a local file.
fn local_path(dir: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("refusing to write {rel:?}: not a plain relative path");
    }
    Ok(dir.join(p))
}

/// Downloads every file of `version` into `dir`; returns (pinned name, files, bytes).
pub(crate) async fn pull(
    client: &mut TrackingClient,
    version: &str,
    dir: &Path,
) -> anyhow::Result<(String, usize, i64)> {
    let v = client
        .get_dataset_version(pb::GetDatasetVersionRequest {
            name: version.to_string(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    let files = all_files(client, &v.name).await?;
    let total: i64 = files.iter().map(|f| f.size_bytes).sum();
    let progress = bar(total as u64, "pull");
    tokio::fs::create_dir_all(dir).await?;
    for f in &files {
        let out = local_path(dir, &f.path)?;
        if let Some(parent) = out.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if out.exists() {
            let (sha, _) = sha256_file(&out, &ProgressBar::hidden()).await?;
            if sha == f.sha256 {
                progress.inc(f.size_bytes as u64);
                continue;
            }
            bail!(
                "{} exists with other content; pull into an empty directory",
                out.display()
            );
        }
        let tmp = out.with_file_name(format!(
            ".{}.steward-partial",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ));
        let mut stream = client
            .download_dataset_file(pb::DownloadDatasetFileRequest {
                version: v.name.clone(),
                path: f.path.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let mut w = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut h = sha2::Sha256::new();
        let mut n = 0i64;
        while let Some(msg) = stream.next().await {
            let msg = match msg {
                Ok(m) => m,
                Err(s) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(status_err(s));
                }
            };
            h.update(&msg.chunk);
            n += msg.chunk.len() as i64;
            w.write_all(&msg.chunk).await?;
            progress.inc(msg.chunk.len() as u64);
        }
        w.flush().await?;
        w.sync_all().await?;
        drop(w);
        let got = hex::encode(h.finalize());
        if got != f.sha256 || n != f.size_bytes {
            let _ = tokio::fs::remove_file(&tmp).await;
            bail!(
                "{}: received {n} bytes with sha256 {got}, expected {} bytes with {}",
                f.path,
                f.size_bytes,
                f.sha256
            );
        }
        tokio::fs::rename(&tmp, &out).await?;
    }
    progress.finish_and_clear();
    Ok((v.name, files.len(), total))
}

fn print_diff(d: &pb::DatasetDiff) {
    use pb::dataset_diff::ChangeKind;
    let kind = |k: i32| match ChangeKind::try_from(k) {
        Ok(ChangeKind::Added) => "added",
        Ok(ChangeKind::Removed) => "removed",
        Ok(ChangeKind::Changed) => "changed",
        Ok(ChangeKind::TypeChanged) => "type changed",
        _ => "?",
    };
    println!(
        "{} ({}) -> {} ({})",
        d.base, d.base_digest, d.target, d.target_digest
    );
    println!("{} files unchanged", d.unchanged_files);
    if !d.files.is_empty() {
        let mut t = table(&["FILE", "CHANGE", "BASE SIZE", "TARGET SIZE", "SHARED"]);
        for f in &d.files {
            t.add_row(vec![
                f.path.clone(),
                kind(f.kind).to_string(),
                bytes(f.base_size_bytes),
                bytes(f.target_size_bytes),
                bytes(f.shared_bytes),
            ]);
        }
        println!("{t}");
    }
    if !d.schema_changes.is_empty() {
        let mut t = table(&["FILE", "COLUMN", "CHANGE", "BASE TYPE", "TARGET TYPE"]);
        for s in &d.schema_changes {
            t.add_row(vec![
                if s.path.is_empty() {
                    "(version)".into()
                } else {
                    s.path.clone()
                },
                s.column.clone(),
                kind(s.kind).to_string(),
                s.base_type.clone(),
                s.target_type.clone(),
            ]);
        }
        println!("{t}");
    }
    if !d.column_shifts.is_empty() {
        let f = |x: f64| {
            if x.is_nan() {
                "-".to_string()
            } else {
                format!("{x:.4}")
            }
        };
        let mut t = table(&["FILE", "COLUMN", "MISSING", "MEAN", "STDDEV", "KS", "PSI"]);
        for s in &d.column_shifts {
            t.add_row(vec![
                if s.path.is_empty() {
                    "(version)".into()
                } else {
                    s.path.clone()
                },
                s.column.clone(),
                format!("{} -> {}", f(s.base_missing_rate), f(s.target_missing_rate)),
                format!("{} -> {}", f(s.base_mean), f(s.target_mean)),
                format!("{} -> {}", f(s.base_stddev), f(s.target_stddev)),
                f(s.ks_statistic),
                f(s.psi),
            ]);
        }
        println!("{t}");
    }
}

/// `steward reproduce MODEL_VERSION [--into DIR]`.
pub async fn reproduce(
    model_version: String,
    into: Option<PathBuf>,
    c: &ClientArgs,
) -> anyhow::Result<()> {
    let name = super::names::version_name(&model_version)?;
    let mut registry = registry_client(c).await?;
    let m = registry
        .get_reproducibility_manifest(rpb::GetReproducibilityManifestRequest { name: name.clone() })
        .await
        .map_err(status_err)?
        .into_inner();
    let code = m.code_version.clone().unwrap_or_default();
    let doc = serde_json::json!({
        "model_version": m.model_version,
        "artifact_uri": m.artifact_uri,
        "content_digest": m.content_digest,
        "format": m.format,
        "source_run": m.source_run,
        "code_version": {"git_commit": code.git_commit, "git_repo": code.git_repo, "git_dirty": code.git_dirty},
        "datasets": m.datasets.iter().map(|d| {
            let r = d.dataset.clone().unwrap_or_default();
            serde_json::json!({"name": r.name, "digest": r.digest, "context": r.context, "source_uri": r.source_uri, "version": d.version})
        }).collect::<Vec<_>>(),
        "params": m.params.iter().collect::<BTreeMap<_, _>>(),
        "environment_files": m.environment_files.iter().map(|f| serde_json::json!({"path": f.path, "size_bytes": f.size_bytes, "sha256": f.sha256})).collect::<Vec<_>>(),
        "complete": m.complete,
        "missing": m.missing,
    });
    if c.json || into.is_none() {
        if c.json {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print_manifest(&m);
        }
    }
    let Some(dir) = into else { return Ok(()) };
    let mut tracking = tracking_client(c).await?;
    tokio::fs::create_dir_all(&dir).await?;
    for d in &m.datasets {
        if d.version.is_empty() {
            let r = d.dataset.clone().unwrap_or_default();
            eprintln!(
                "skipping dataset {} ({}): not a stored version",
                r.name, r.digest
            );
            continue;
        }
        let r = d.dataset.clone().unwrap_or_default();
        let target = dir.join("data").join(&r.name);
        pull(&mut tracking, &d.version, &target).await?;
    }
    if !m.source_run.is_empty() {
        let v = registry
            .get_model_version(rpb::GetModelVersionRequest { name: name.clone() })
            .await
            .map_err(status_err)?
            .into_inner();
        let model_dir = dir.join("model");
        download_run_files(&mut tracking, &m.source_run, &v.artifact_path, &model_dir).await?;
        let env_dir = dir.join("environment");
        for f in &m.environment_files {
            download_run_files(&mut tracking, &m.source_run, &f.path, &env_dir).await?;
        }
    }
    tokio::fs::write(dir.join("REPRODUCE.json"), serde_json::to_vec_pretty(&doc)?).await?;
    println!(
        "{} materialized into {} ({}complete)",
        m.model_version,
        dir.display(),
        if m.complete { "" } else { "in" }
    );
    Ok(())
}

fn print_manifest(m: &rpb::ReproducibilityManifest) {
    let code = m.code_version.clone().unwrap_or_default();
    println!(
        "{}  ({})",
        m.model_version,
        if m.complete { "complete" } else { "INCOMPLETE" }
    );
    println!("artifact  {} {}", m.content_digest, m.artifact_uri);
    println!(
        "code      {} @ {}{}",
        code.git_repo,
        code.git_commit,
        if code.git_dirty { " (dirty)" } else { "" }
    );
    println!("run       {}", m.source_run);
    for d in &m.datasets {
        let r = d.dataset.clone().unwrap_or_default();
        println!(
            "data      {} ({}) {} {}",
            r.name,
            r.context,
            r.digest,
            if d.version.is_empty() {
                "-".to_string()
            } else {
                d.version.clone()
            }
        );
    }
    for (k, v) in m.params.iter().collect::<BTreeMap<_, _>>() {
        println!("param     {k} = {v}");
    }
    for f in &m.environment_files {
        println!("env       {} sha256 {}", f.path, f.sha256);
    }
    for x in &m.missing {
        println!("missing   {x}");
    }
}

/// Downloads the run's artifact `path` into `dir`: a directory's files with their paths below
/// it, or a single file under its name; each checked against its sha256.
async fn download_run_files(
    client: &mut TrackingClient,
    run: &str,
    path: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let files = super::artifacts::list_all(client, run, &prefix).await?;
    // A directory's files keep their paths below it; a single file keeps its name.
    let list: Vec<(String, String)> = if files.is_empty() {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        vec![(path.to_string(), name)]
    } else {
        files
            .into_iter()
            .map(|a| {
                let rel = a.path.strip_prefix(&prefix).unwrap_or(&a.path).to_string();
                (a.path, rel)
            })
            .collect()
    };
    for (p, rel) in list {
        let out = local_path(dir, &rel)?;
        if let Some(parent) = out.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut stream = client
            .download_artifact(pb::DownloadArtifactRequest {
                run: run.to_string(),
                path: p.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let mut w = tokio::fs::File::create(&out).await?;
        let mut h = sha2::Sha256::new();
        let mut want = String::new();
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(status_err)?;
            if let Some(a) = msg.artifact {
                want = a.sha256;
            }
            h.update(&msg.chunk);
            w.write_all(&msg.chunk).await?;
        }
        w.flush().await?;
        let got = hex::encode(h.finalize());
        if !want.is_empty() && got != want {
            bail!("{p}: received sha256 {got}, expected {want}");
        }
    }
    Ok(())
}
