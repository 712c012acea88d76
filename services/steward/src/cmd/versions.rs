//! `steward versions ...` and `steward approve ...`

use steward_proto::registry as pb;

use super::experiments::uuid_like;
use super::models::tags_text;
use super::output::{table, time};
use super::registry_json as js;
use super::{names, registry_client, status_err};
use crate::cli::{ApproveArgs, ClientArgs, VersionsCmd};

/// Where a version's files come from, in one cell.
fn source(v: &pb::ModelVersion) -> String {
    if v.source_run.is_empty() {
        v.source_uri.clone()
    } else {
        format!("{} : {}", v.source_run, v.artifact_path)
    }
}

/// `input x float32 [-1, 4]` lines of a signature.
fn signature_lines(s: &pb::ModelSignature) -> Vec<String> {
    let spec =
        |dir: &str, t: &pb::TensorSpec| format!("{dir} {} {} {:?}", t.name, t.dtype, t.shape);
    s.inputs
        .iter()
        .map(|t| spec("input", t))
        .chain(s.outputs.iter().map(|t| spec("output", t)))
        .collect()
}

/// Every field of a version as a FIELD/VALUE table.
fn print_version(v: &pb::ModelVersion) {
    let mut t = table(&["FIELD", "VALUE"]);
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            t.add_row(vec![k.to_string(), v]);
        }
    };
    row("name", v.name.clone());
    row("version", v.version.to_string());
    row("status", js::status(v.status));
    row("status message", v.status_message.clone());
    row("approval", js::approval(v.approval_state));
    if let Some(r) = &v.last_review {
        let comment = if r.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", r.comment)
        };
        row(
            "last review",
            format!(
                "{} by {} at {}{comment}",
                js::approval(r.state),
                r.reviewer,
                time(&r.time)
            ),
        );
    }
    let mut aliases = v.aliases.clone();
    aliases.sort();
    row("aliases", aliases.join(", "));
    row("source run", v.source_run.clone());
    row("artifact path", v.artifact_path.clone());
    row("source uri", v.source_uri.clone());
    row("artifact uri", v.artifact_uri.clone());
    row("content digest", v.content_digest.clone());
    row("format", v.format.clone());
    if let Some(s) = &v.signature {
        row("signature", signature_lines(s).join("\n"));
    }
    row("description", v.description.clone());
    row("tags", tags_text(&v.tags));
    row("creator", v.creator.clone());
    row("created", time(&v.create_time));
    row("updated", time(&v.update_time));
    println!("{t}");
}

/// Runs a versions command.
pub async fn run(cmd: VersionsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = registry_client(c).await?;
    match cmd {
        VersionsCmd::Get { name } => {
            let v = client
                .get_model_version(pb::GetModelVersionRequest {
                    name: names::version_name(&name)?,
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                js::print(&js::version(&v));
            } else {
                print_version(&v);
            }
        }
        VersionsCmd::List {
            model,
            filter,
            limit,
        } => {
            let parent = names::model_name(&model)?;
            let mut rows = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_model_versions(pb::ListModelVersionsRequest {
                        parent: parent.clone(),
                        page_size: (limit - rows.len()).min(1000) as i32,
                        page_token: token,
                        filter: filter.clone(),
                        order_by: String::new(),
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                rows.extend(page.model_versions);
                token = page.next_page_token;
                if token.is_empty() || rows.len() >= limit {
                    break;
                }
            }
            if c.json {
                rows.iter().for_each(|v| js::print(&js::version(v)));
                return Ok(());
            }
            let mut t = table(&[
                "VERSION", "STATUS", "APPROVAL", "ALIASES", "SOURCE", "CREATOR", "CREATED",
            ]);
            for v in &rows {
                let mut aliases = v.aliases.clone();
                aliases.sort();
                t.add_row(vec![
                    v.version.to_string(),
                    js::status(v.status),
                    js::approval(v.approval_state),
                    aliases.join(", "),
                    source(v),
                    v.creator.clone(),
                    time(&v.create_time),
                ]);
            }
            println!("{t}");
            println!(
                "{} version(s) of {parent}{}",
                rows.len(),
                if token.is_empty() {
                    ""
                } else {
                    " (more: raise --limit)"
                }
            );
        }
        VersionsCmd::Create {
            model,
            run,
            artifact_path,
            uri,
            digest,
            format,
            description,
            tags,
        } => {
            let v = client
                .create_model_version(pb::CreateModelVersionRequest {
                    parent: names::model_name(&model)?,
                    model_version: Some(pb::ModelVersion {
                        source_run: run.unwrap_or_default(),
                        artifact_path: artifact_path.unwrap_or_default(),
                        source_uri: uri.unwrap_or_default(),
                        content_digest: digest.unwrap_or_default(),
                        format,
                        description,
                        tags: tags.into_iter().collect(),
                        ..Default::default()
                    }),
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                js::print(&js::version(&v));
                return Ok(());
            }
            println!(
                "created {} ({}, {})",
                v.name,
                js::status(v.status),
                if v.content_digest.is_empty() {
                    "no digest yet"
                } else {
                    &v.content_digest
                }
            );
        }
        VersionsCmd::Compare { base, other } => {
            super::lineage::compare(&mut client, c, &base, &other).await?;
        }
        VersionsCmd::Lineage { name } => {
            super::lineage::lineage(&mut client, c, &name).await?;
        }
    }
    Ok(())
}

/// `steward approve`: records an APPROVED (or, with `--reject`, REJECTED) review.
pub async fn approve(a: ApproveArgs, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = registry_client(c).await?;
    let decision = if a.reject {
        pb::ApprovalState::Rejected
    } else {
        pb::ApprovalState::Approved
    };
    let v = client
        .review_model_version(pb::ReviewModelVersionRequest {
            name: names::version_name(&a.name)?,
            decision: decision as i32,
            comment: a.comment,
            etag: String::new(),
            request_id: uuid_like(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        js::print(&js::version(&v));
        return Ok(());
    }
    let reviewer = v
        .last_review
        .as_ref()
        .map(|r| r.reviewer.as_str())
        .unwrap_or("?");
    println!(
        "{} {} (reviewer {reviewer}; approval is now {})",
        if a.reject { "rejected" } else { "approved" },
        v.name,
        js::approval(v.approval_state)
    );
    Ok(())
}
