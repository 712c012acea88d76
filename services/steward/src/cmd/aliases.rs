//! `steward alias ...`

use steward_proto::registry as pb;

use super::experiments::uuid_like;
use super::output::{table, time};
use super::registry_json as js;
use super::{names, registry_client, status_err};
use crate::cli::{AliasCmd, ClientArgs};

/// What one history entry did, in words.
fn change(e: &pb::AliasHistoryEntry) -> String {
    match (e.previous_version, e.version) {
        (0, 0) => "deleted".into(),
        (0, v) => format!("created -> v{v}"),
        (p, 0) => format!("deleted (was v{p})"),
        (p, v) => format!("moved v{p} -> v{v}"),
    }
}

/// Runs an alias command.
pub async fn run(cmd: AliasCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = registry_client(c).await?;
    match cmd {
        AliasCmd::Set {
            model,
            alias,
            number,
        } => {
            let a = client
                .set_model_version_alias(pb::SetModelVersionAliasRequest {
                    registered_model: names::model_name(&model)?,
                    alias,
                    version: number,
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                js::print(&js::alias(&a));
                return Ok(());
            }
            println!(
                "{}@{} -> version {} (set by {} at {})",
                a.registered_model,
                a.alias,
                a.version,
                a.updater,
                time(&a.update_time)
            );
        }
        AliasCmd::Delete { model, alias } => {
            let registered_model = names::model_name(&model)?;
            client
                .delete_model_version_alias(pb::DeleteModelVersionAliasRequest {
                    registered_model: registered_model.clone(),
                    alias: alias.clone(),
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?;
            if c.json {
                js::print(&serde_json::json!({
                    "registered_model": registered_model, "alias": alias, "deleted": true,
                }));
                return Ok(());
            }
            println!("deleted alias {alias} of {registered_model}");
        }
        AliasCmd::History {
            model,
            alias,
            as_of,
            limit,
        } => {
            let registered_model = names::model_name(&model)?;
            let as_of = as_of.as_deref().map(names::parse_time).transpose()?;
            let mut rows = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_alias_history(pb::ListAliasHistoryRequest {
                        registered_model: registered_model.clone(),
                        alias: alias.clone().unwrap_or_default(),
                        as_of,
                        page_size: (limit - rows.len()).min(1000) as i32,
                        page_token: token,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                rows.extend(page.entries);
                token = page.next_page_token;
                if token.is_empty() || rows.len() >= limit {
                    break;
                }
            }
            if c.json {
                rows.iter().for_each(|e| js::print(&js::alias_entry(e)));
                return Ok(());
            }
            let mut t = table(&["TIME", "ALIAS", "VERSION", "CHANGE", "ACTOR", "REQUEST"]);
            for e in &rows {
                t.add_row(vec![
                    time(&e.time),
                    e.alias.clone(),
                    if e.version == 0 {
                        "-".into()
                    } else {
                        e.version.to_string()
                    },
                    change(e),
                    e.actor.clone(),
                    e.request_id.clone(),
                ]);
            }
            println!("{t}");
            println!(
                "{} move(s) of {registered_model}'s aliases{}",
                rows.len(),
                if token.is_empty() {
                    ""
                } else {
                    " (more: raise --limit)"
                }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_words() {
        let e = |previous_version, version| pb::AliasHistoryEntry {
            previous_version,
            version,
            ..Default::default()
        };
        assert_eq!(change(&e(0, 3)), "created -> v3");
        assert_eq!(change(&e(3, 4)), "moved v3 -> v4");
        assert_eq!(change(&e(4, 0)), "deleted (was v4)");
    }
}
