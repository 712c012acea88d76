//! `steward audit ...`: export the audit trail as JSON Lines, print the chain heads (anchors),
//! and verify an export offline or the server's chains.

pub(super) mod offline;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use steward_proto::audit as pb;
use steward_storage::audit::ChainHead;

use super::names::parse_time;
use super::{AuditClient, audit_client, status_err};
use crate::cli::{AuditCmd, ClientArgs};

/// Records asked for per ListAuditEvents page.
const PAGE_SIZE: i32 = 1000;

/// Runs an audit command.
pub async fn run(cmd: AuditCmd, c: &ClientArgs) -> Result<()> {
    match cmd {
        AuditCmd::Export {
            service,
            since,
            until,
            output,
        } => {
            let req = pb::ListAuditEventsRequest {
                service: service.unwrap_or_default(),
                start_time: since.as_deref().map(parse_time).transpose()?,
                end_time: until.as_deref().map(parse_time).transpose()?,
                page_size: PAGE_SIZE,
                ..Default::default()
            };
            export(c, req, output.as_deref()).await
        }
        AuditCmd::Heads => {
            let heads = audit_client(c)
                .await?
                .get_audit_chain_heads(pb::GetAuditChainHeadsRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .heads;
            let heads = offline::heads_from(heads);
            let saved = serde_json::json!({
                "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "heads": heads,
            });
            println!("{}", serde_json::to_string_pretty(&saved)?);
            Ok(())
        }
        AuditCmd::Verify {
            file,
            anchors,
            server,
            service,
        } => {
            let anchors = match &anchors {
                Some(p) => offline::parse_anchors(&read(p)?)
                    .with_context(|| format!("--anchors {}", p.display()))?,
                None => Vec::new(),
            };
            match file {
                Some(f) if !server => verify_file(&f, &anchors, c.json),
                _ => verify_server(c, service.unwrap_or_default(), anchors).await,
            }
        }
    }
}

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
}

/// Pages through ListAuditEvents from `req`, writing one JSON line per record to `out` (the
/// export format of [`offline::parse_export`]) and calling `each` with it; returns how many.
pub(crate) async fn export_events(
    client: &mut AuditClient,
    mut req: pb::ListAuditEventsRequest,
    out: &mut dyn Write,
    mut each: impl FnMut(&pb::AuditEvent),
) -> Result<u64> {
    let mut n = 0u64;
    loop {
        let page = client
            .list_audit_events(req.clone())
            .await
            .map_err(status_err)?
            .into_inner();
        for e in &page.events {
            serde_json::to_writer(&mut *out, &offline::ExportLine::from(e))?;
            out.write_all(b"\n")?;
            each(e);
        }
        n += page.events.len() as u64;
        if page.next_page_token.is_empty() {
            return Ok(n);
        }
        req.page_token = page.next_page_token;
    }
}

/// Pages through ListAuditEvents and writes one JSON line per record, to `output` (through a
/// `.partial` file renamed at the end, with a progress indicator) or to stdout.
async fn export(
    c: &ClientArgs,
    req: pb::ListAuditEventsRequest,
    output: Option<&Path>,
) -> Result<()> {
    let mut client = audit_client(c).await?;
    let (mut out, progress, partial): (Box<dyn Write>, _, _) = match output {
        Some(path) => {
            let partial = PathBuf::from(format!("{}.partial", path.display()));
            let f = std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} exported {pos} audit records ({per_sec})")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            (
                Box::new(std::io::BufWriter::new(f)),
                Some(bar),
                Some(partial),
            )
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
            None,
        ),
    };
    let n = export_events(&mut client, req, &mut out, |_| {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    })
    .await?;
    out.flush()?;
    drop(out);
    if let (Some(path), Some(partial), Some(bar)) = (output, partial, progress) {
        std::fs::rename(&partial, path).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), path.display())
        })?;
        bar.finish_and_clear();
        eprintln!("exported {n} audit record(s) to {}", path.display());
    }
    Ok(())
}

/// Verifies an export offline; fails naming the first broken record.
fn verify_file(file: &Path, anchors: &[ChainHead], json: bool) -> Result<()> {
    let records = offline::parse_export(&read(file)?)
        .with_context(|| format!("{} is not an audit export", file.display()))?;
    let total = records.len();
    let reports = offline::verify_export(records, anchors);
    for r in &reports {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "service": r.service,
                    "ok": r.ok(),
                    "records": r.records,
                    "first_seq": r.first_seq,
                    "last_seq": r.last_seq,
                    "first_broken_seq": r.first_broken_seq,
                    "problem": r.problem.map(|p| p.as_str()),
                    "unverified_anchors": r.unverified_anchors,
                })
            );
        } else {
            println!("{}", offline::describe(r));
        }
    }
    if let Some(r) = reports.iter().find(|r| !r.ok()) {
        bail!(
            "audit chain {:?} in {} is broken at seq {}: {}",
            r.service,
            file.display(),
            r.first_broken_seq.unwrap_or_default(),
            r.problem.map(|p| p.as_str()).unwrap_or_default()
        );
    }
    if !json {
        println!(
            "verified {total} record(s) in {} chain(s){}",
            reports.len(),
            if anchors.is_empty() {
                " (no anchors: a truncated tail cannot be detected; see `steward audit heads`)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Asks the server to verify its chains (VerifyAuditChain); fails naming the first break.
async fn verify_server(c: &ClientArgs, service: String, anchors: Vec<ChainHead>) -> Result<()> {
    let resp = audit_client(c)
        .await?
        .verify_audit_chain(pb::VerifyAuditChainRequest {
            service,
            anchors: anchors
                .into_iter()
                .map(|a| pb::ChainHead {
                    service: a.service,
                    seq: a.seq,
                    hash: a.hash,
                })
                .collect(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    for ch in &resp.chains {
        if c.json {
            println!(
                "{}",
                serde_json::json!({
                    "service": ch.service,
                    "ok": ch.ok,
                    "records": ch.records,
                    "first_broken_seq": ch.first_broken_seq,
                    "problem": ch.problem,
                    "head": ch.head.as_ref().map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash})),
                })
            );
        } else if ch.ok {
            println!("{}: ok, {} record(s)", ch.service, ch.records);
        } else {
            println!(
                "{}: BROKEN at seq {}: {} ({} record(s) verified before it)",
                ch.service, ch.first_broken_seq, ch.problem, ch.records
            );
        }
    }
    if let Some(ch) = resp.chains.iter().find(|ch| !ch.ok) {
        bail!(
            "audit chain {:?} is broken at seq {}: {}",
            ch.service,
            ch.first_broken_seq,
            ch.problem
        );
    }
    Ok(())
}
