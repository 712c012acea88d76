//! `steward models ...`

use steward_proto::registry as pb;

use super::experiments::uuid_like;
use super::output::{table, time};
use super::registry_json as js;
use super::{names, registry_client, status_err};
use crate::cli::{ClientArgs, ModelsCmd};

/// `alias=v3, other=v1`, sorted by alias.
pub(crate) fn aliases_text<'a>(aliases: impl IntoIterator<Item = (&'a String, &'a i64)>) -> String {
    let mut a: Vec<String> = aliases
        .into_iter()
        .map(|(k, v)| format!("{k}=v{v}"))
        .collect();
    a.sort();
    a.join(", ")
}

/// `k=v, k2=v2`, sorted by key.
pub(crate) fn tags_text(tags: &std::collections::HashMap<String, String>) -> String {
    let mut t: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    t.sort();
    t.join(", ")
}

/// Runs a models command.
pub async fn run(cmd: ModelsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = registry_client(c).await?;
    match cmd {
        ModelsCmd::List {
            filter,
            order_by,
            limit,
        } => {
            let mut rows = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_registered_models(pb::ListRegisteredModelsRequest {
                        page_size: (limit - rows.len()).min(1000) as i32,
                        page_token: token,
                        filter: filter.clone(),
                        order_by: order_by.clone(),
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                rows.extend(page.registered_models);
                token = page.next_page_token;
                if token.is_empty() || rows.len() >= limit {
                    break;
                }
            }
            if c.json {
                rows.iter().for_each(|m| js::print(&js::model(m)));
                return Ok(());
            }
            let mut t = table(&["NAME", "LATEST", "ALIASES", "CREATOR", "UPDATED", "TAGS"]);
            for m in &rows {
                let latest = m
                    .latest_version
                    .as_ref()
                    .map(|v| format!("v{} {}", v.version, js::approval(v.approval_state)))
                    .unwrap_or_else(|| "-".into());
                t.add_row(vec![
                    m.name.clone(),
                    latest,
                    aliases_text(&m.aliases),
                    m.creator.clone(),
                    time(&m.update_time),
                    tags_text(&m.tags),
                ]);
            }
            println!("{t}");
            println!(
                "{} model(s){}",
                rows.len(),
                if token.is_empty() {
                    ""
                } else {
                    " (more: raise --limit)"
                }
            );
        }
        ModelsCmd::Get { model } => {
            let m = client
                .get_registered_model(pb::GetRegisteredModelRequest {
                    name: names::model_name(&model)?,
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                js::print(&js::model(&m));
                return Ok(());
            }
            let mut t = table(&["FIELD", "VALUE"]);
            t.add_row(vec!["name".into(), m.name.clone()]);
            t.add_row(vec!["description".into(), m.description.clone()]);
            t.add_row(vec!["creator".into(), m.creator.clone()]);
            t.add_row(vec!["created".into(), time(&m.create_time)]);
            t.add_row(vec!["updated".into(), time(&m.update_time)]);
            match &m.latest_version {
                Some(v) => t.add_row(vec![
                    "latest version".into(),
                    format!(
                        "{} ({}, {})",
                        v.version,
                        js::status(v.status),
                        js::approval(v.approval_state)
                    ),
                ]),
                None => t.add_row(vec!["latest version".to_string(), "-".to_string()]),
            };
            let mut aliases: Vec<_> = m.aliases.iter().collect();
            aliases.sort();
            for (a, v) in aliases {
                t.add_row(vec![format!("alias {a}"), format!("version {v}")]);
            }
            let mut tags: Vec<_> = m.tags.iter().collect();
            tags.sort();
            for (k, v) in tags {
                t.add_row(vec![format!("tag {k}"), v.clone()]);
            }
            println!("{t}");
        }
        ModelsCmd::Create {
            name,
            description,
            tags,
        } => {
            let m = client
                .create_registered_model(pb::CreateRegisteredModelRequest {
                    registered_model: Some(pb::RegisteredModel {
                        name: names::model_name(&name)?,
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
                js::print(&js::model(&m));
                return Ok(());
            }
            println!("created {}", m.name);
        }
    }
    Ok(())
}
