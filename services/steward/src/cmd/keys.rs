//! `steward keys` (offline, in the database), `steward grants` and `steward whoami` (online).

use anyhow::{Context, Result};
use steward_auth::admin::{AuthAdmin, NewKeyRequest};
use steward_auth::{Role, store};
use steward_proto::auth as pb;
use steward_proto::auth::auth_service_client::AuthServiceClient;
use steward_storage::ops::Ctx;

use super::output::{table, time};
use super::{channel, status_err};
use crate::cli::{ClientArgs, GrantsCmd, KeysCmd, ServerArgs};

/// Opens (and migrates) the database of the configuration.
async fn open_db(server: &ServerArgs) -> Result<steward_storage::Db> {
    let cfg = super::up::load(None, false, server)?;
    if cfg.is_sqlite() {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    }
    let db = steward_storage::Db::connect(&cfg.database_url, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    steward_storage::migrate::run(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(db)
}

/// The actor of offline changes: whoever runs the CLI on the database host.
fn offline_ctx() -> Ctx {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Ctx {
        actor: format!("steward-cli:{user}"),
        ..Ctx::default()
    }
}

fn ms(t: Option<i64>) -> String {
    t.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Runs a `steward keys` command.
pub async fn keys(cmd: KeysCmd) -> Result<()> {
    let err = |e: steward_common::Error| anyhow::anyhow!("{}", e.message);
    match cmd {
        KeysCmd::Create {
            principal,
            role,
            service,
            expires_in_days,
            description,
            server,
        } => {
            let role = role
                .as_deref()
                .map(|r| Role::parse(r, "--role"))
                .transpose()
                .map_err(err)?;
            let db = open_db(&server).await?;
            let admin = AuthAdmin::new(db.clone(), "registry");
            let created = admin
                .create_key(
                    &offline_ctx(),
                    NewKeyRequest {
                        principal,
                        kind: if service { 2 } else { 1 },
                        description,
                        expire_time: expires_in_days
                            .map(|d| steward_common::time::now_ms() + i64::from(d) * 86_400_000),
                        role,
                    },
                    "",
                )
                .await
                .map_err(err)?;
            db.close().await;
            let k = &created.key;
            eprintln!(
                "created apiKeys/{} for {}{}; the key is shown only now:",
                k.id,
                k.principal,
                role.map(|r| format!(" (global {r})")).unwrap_or_default()
            );
            println!("{}", created.secret);
            eprintln!("use it with: export STEWARD_TOKEN=<the key above>");
            Ok(())
        }
        KeysCmd::List {
            principal,
            all,
            server,
        } => {
            let db = open_db(&server).await?;
            let keys = store::keys(db.conn(), principal.as_deref(), all)
                .await
                .map_err(err)?;
            db.close().await;
            let mut t = table(&[
                "KEY",
                "PRINCIPAL",
                "KIND",
                "CREATED",
                "EXPIRES",
                "REVOKED",
                "DESCRIPTION",
            ]);
            for k in keys {
                t.add_row(vec![
                    format!("apiKeys/{}", k.id),
                    k.principal,
                    if k.kind == 2 { "service" } else { "user" }.into(),
                    ms(Some(k.create_time)),
                    ms(k.expire_time),
                    ms(k.revoke_time),
                    k.description,
                ]);
            }
            println!("{t}");
            Ok(())
        }
        KeysCmd::Revoke { name, server } => {
            let name = if name.starts_with("apiKeys/") {
                name
            } else {
                format!("apiKeys/{name}")
            };
            let db = open_db(&server).await?;
            let k = AuthAdmin::new(db.clone(), "registry")
                .revoke_key(&offline_ctx(), &name, "")
                .await
                .map_err(err)?;
            db.close().await;
            println!(
                "revoked apiKeys/{} ({}) at {}",
                k.id,
                k.principal,
                ms(k.revoke_time)
            );
            Ok(())
        }
    }
}

async fn client(c: &ClientArgs) -> Result<AuthServiceClient<super::CliChannel>> {
    Ok(AuthServiceClient::new(channel(c).await?))
}

/// Runs a `steward grants` command.
pub async fn grants(cmd: GrantsCmd, c: &ClientArgs) -> Result<()> {
    let mut client = client(c).await?;
    match cmd {
        GrantsCmd::Add {
            principal,
            role,
            resource,
        } => {
            let g = client
                .create_grant(pb::CreateGrantRequest {
                    grant: Some(pb::Grant {
                        principal,
                        role,
                        resource,
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!("granted {} on {} to {}", g.role, g.resource, g.principal);
        }
        GrantsCmd::List { principal } => {
            let list = client
                .list_grants(pb::ListGrantsRequest {
                    principal: principal.unwrap_or_default(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let mut t = table(&["PRINCIPAL", "ROLE", "RESOURCE", "BY", "SINCE"]);
            for g in list.grants {
                t.add_row(vec![
                    g.principal,
                    g.role,
                    g.resource,
                    g.creator,
                    time(&g.create_time),
                ]);
            }
            println!("{t}");
        }
        GrantsCmd::Remove {
            principal,
            resource,
        } => {
            client
                .delete_grant(pb::DeleteGrantRequest {
                    principal: principal.clone(),
                    resource: resource.clone(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await
                .map_err(status_err)?;
            println!("removed the grant of {principal} on {resource}");
        }
    }
    Ok(())
}

/// `steward whoami`.
pub async fn whoami(c: &ClientArgs) -> Result<()> {
    let me = client(c)
        .await?
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        let grants: Vec<_> = me
            .grants
            .iter()
            .map(|g| serde_json::json!({"role": g.role, "resource": g.resource}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"principal": me.principal, "key": me.key, "open_mode": me.open_mode, "grants": grants})
        );
        return Ok(());
    }
    println!("principal: {}", me.principal);
    if me.open_mode {
        println!("the server runs open (no key sent, none needed)");
    } else {
        println!("key:       {}", me.key);
        for g in me.grants {
            println!("grant:     {} on {}", g.role, g.resource);
        }
    }
    Ok(())
}
