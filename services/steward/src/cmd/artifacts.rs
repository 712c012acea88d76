//! `steward artifacts ...`: streamed transfers with a progress bar.

use std::path::PathBuf;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use steward_proto::tracking as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::output::{bytes, table, time};
use super::{status_err, tracking_client};
use crate::cli::{ArtifactsCmd, ClientArgs};

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

/// Runs an artifacts command.
pub async fn run(cmd: ArtifactsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = tracking_client(c).await?;
    match cmd {
        ArtifactsCmd::Upload { run, file, path } => {
            let path = match path {
                Some(p) => p,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| {
                        anyhow::anyhow!("give --path: {} has no usable file name", file.display())
                    })?
                    .to_string(),
            };
            let mut f = tokio::fs::File::open(&file)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
            let size = f.metadata().await?.len();
            let progress = bar(size, "upload");
            let header = pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Header(
                    pb::ArtifactHeader {
                        run,
                        path,
                        content_type: String::new(),
                        request_id: super::experiments::uuid_like(),
                        expected_sha256: String::new(),
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
                            yield pb::UploadArtifactRequest { part: Some(pb::upload_artifact_request::Part::Chunk(bytes::Bytes::copy_from_slice(&buf[..n]))) };
                        }
                        Err(e) => {
                            eprintln!("read error: {e}");
                            break;
                        }
                    }
                }
            };
            let a = client
                .upload_artifact(body)
                .await
                .map_err(status_err)?
                .into_inner();
            progress.finish_and_clear();
            println!(
                "uploaded {} ({}, sha256 {})",
                a.path,
                bytes(a.size_bytes),
                a.sha256
            );
        }
        ArtifactsCmd::Download { run, path, output } => {
            let out: PathBuf = output
                .unwrap_or_else(|| PathBuf::from(path.rsplit('/').next().unwrap_or("artifact")));
            let mut stream = client
                .download_artifact(pb::DownloadArtifactRequest { run, path })
                .await
                .map_err(status_err)?
                .into_inner();
            let tmp = out.with_extension("steward-partial");
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
            let mut progress = None;
            let mut sha = None;
            while let Some(msg) = stream.next().await {
                let msg = msg.map_err(status_err)?;
                if let Some(a) = msg.artifact {
                    progress = Some(bar(a.size_bytes as u64, "download"));
                    sha = Some(a.sha256);
                }
                f.write_all(&msg.chunk).await?;
                if let Some(p) = &progress {
                    p.inc(msg.chunk.len() as u64);
                }
            }
            f.flush().await?;
            f.sync_all().await?;
            drop(f);
            tokio::fs::rename(&tmp, &out).await?;
            if let Some(p) = progress {
                p.finish_and_clear();
            }
            println!(
                "downloaded {} (sha256 {})",
                out.display(),
                sha.unwrap_or_default()
            );
        }
        ArtifactsCmd::List { run, prefix } => {
            let items = list_all(&mut client, &run, &prefix).await?;
            let mut t = table(&["PATH", "SIZE", "SHA256", "CREATED"]);
            for a in &items {
                t.add_row(vec![
                    a.path.clone(),
                    bytes(a.size_bytes),
                    a.sha256.clone(),
                    time(&a.create_time),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

/// Every artifact of `run` under `prefix`, all pages.
pub(crate) async fn list_all(
    client: &mut super::TrackingClient,
    run: &str,
    prefix: &str,
) -> anyhow::Result<Vec<pb::Artifact>> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_artifacts(pb::ListArtifactsRequest {
                run: run.to_string(),
                prefix: prefix.to_string(),
                page_size: 1000,
                page_token: token,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        items.extend(page.artifacts);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    Ok(items)
}
