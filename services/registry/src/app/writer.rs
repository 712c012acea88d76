//! Group commit of new model versions.
//!
//! Every `CreateModelVersion` that passed validation (and its source check) is handed to one
//! writer task per process. The writer takes whatever is queued (up to [`MAX_BATCH`]) and
//! writes it in one transaction: one counter update per model (numbers stay gap-free and in
//! queue order), multi-row inserts of the versions, their audit records (one chain-head lock),
//! their events and their idempotency records. With SQLite every statement is a round trip to
//! the database thread, so a batch of N costs about as much as a single create, and throughput
//! grows with concurrency. If a batch fails as a whole, each create is retried alone so one bad
//! request cannot fail the others.

use std::collections::{BTreeMap, HashSet};

use steward_common::Error;
use steward_storage::audit::AuditEntry;
use steward_storage::idempotency::{self, IdemKey};
use steward_storage::{Db, ops, outbox, with_write_tx};
use tokio::sync::{mpsc, oneshot};

use super::{Ctx, SERVICE, canonical, model_not_found, replay};
use crate::domain::{ApprovalState, Lineage, ModelVersion, Signature, VersionStatus};
use crate::store::{models, versions};

/// Most creates written in one transaction.
pub const MAX_BATCH: usize = 256;

/// A validated create, ready to be written.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Caller.
    pub ctx: Ctx,
    /// Model id.
    pub model: String,
    /// Idempotency key, if the request had a request id.
    pub key: Option<IdemKey>,
    /// The request id (may be empty).
    pub request_id: String,
    /// Source run or "".
    pub source_run: String,
    /// Artifact path or "".
    pub artifact_path: String,
    /// External URI or "".
    pub source_uri: String,
    /// Where the files are.
    pub artifact_uri: String,
    /// Digest.
    pub content_digest: String,
    /// Initial status.
    pub status: VersionStatus,
    /// Signature.
    pub signature: Signature,
    /// Format.
    pub format: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Frozen lineage.
    pub lineage: Lineage,
}

type Reply = oneshot::Sender<Result<ModelVersion, Error>>;

/// Handle to the writer task.
#[derive(Clone)]
pub struct VersionWriter {
    queue: mpsc::Sender<(Prepared, Reply)>,
}

impl VersionWriter {
    /// Starts the writer over `db`.
    pub fn spawn(db: Db) -> Self {
        let (queue, mut rx) = mpsc::channel::<(Prepared, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                write(&db, batch).await;
            }
        });
        Self { queue }
    }

    /// Writes one create (with whatever else is queued) and returns the stored version.
    pub async fn create(&self, p: Prepared) -> Result<ModelVersion, Error> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((p, tx))
            .await
            .map_err(|_| Error::unavailable("SHUTTING_DOWN", "the registry is shutting down"))?;
        rx.await
            .map_err(|_| Error::internal("version writer stopped"))?
    }
}

async fn write(db: &Db, batch: Vec<(Prepared, Reply)>) {
    // Two creates with one request id go through the one-by-one path (the second replays).
    let mut seen = HashSet::new();
    let (grouped, alone): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(p, _)| {
        p.key
            .as_ref()
            .is_none_or(|k| seen.insert(k.request_id.clone()))
    });
    if grouped.len() > 1 {
        let items: Vec<Prepared> = grouped.iter().map(|(p, _)| p.clone()).collect();
        match write_many(db, &items).await {
            Ok(results) => {
                for ((_, reply), r) in grouped.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "batched version create failed; writing one by one");
                for (p, reply) in grouped {
                    let _ = reply.send(
                        write_many(db, std::slice::from_ref(&p))
                            .await
                            .and_then(single),
                    );
                }
            }
        }
    } else {
        for (p, reply) in grouped {
            let _ = reply.send(
                write_many(db, std::slice::from_ref(&p))
                    .await
                    .and_then(single),
            );
        }
    }
    for (p, reply) in alone {
        let _ = reply.send(
            write_many(db, std::slice::from_ref(&p))
                .await
                .and_then(single),
        );
    }
}

fn single(mut r: Vec<Result<ModelVersion, Error>>) -> Result<ModelVersion, Error> {
    r.pop()
        .unwrap_or_else(|| Err(Error::internal("empty batch result")))
}

/// Writes `items` in one transaction; a per-item error (model gone) fails only that item.
async fn write_many(
    db: &Db,
    items: &[Prepared],
) -> Result<Vec<Result<ModelVersion, Error>>, Error> {
    with_write_tx!(db, "create_versions", |tx| {
        let mut out: Vec<Option<Result<ModelVersion, Error>>> = vec![None; items.len()];
        for (i, p) in items.iter().enumerate() {
            if let Some(v) = replay::<ModelVersion>(&tx, p.key.as_ref()).await? {
                out[i] = Some(Ok(v));
            }
        }
        let now = steward_common::time::now_ms();
        // Numbers: one counter update per model, handed out in queue order.
        let mut by_model: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in items.iter().enumerate() {
            if out[i].is_none() {
                by_model.entry(p.model.as_str()).or_default().push(i);
            }
        }
        let mut created: Vec<(usize, ModelVersion)> = Vec::new();
        for (model, idxs) in by_model {
            let Some(last) = models::take_versions(&tx, model, idxs.len() as i64, now).await?
            else {
                for i in idxs {
                    out[i] = Some(Err(model_not_found(model)));
                }
                continue;
            };
            let first = last - idxs.len() as i64 + 1;
            for (k, i) in idxs.into_iter().enumerate() {
                created.push((i, version_of(&items[i], first + k as i64, now)));
            }
        }
        if !created.is_empty() {
            let rows: Vec<(&ModelVersion, &Lineage)> = created
                .iter()
                .map(|(i, v)| (v, &items[*i].lineage))
                .collect();
            versions::insert_many(&tx, &rows).await?;
            let audit: Vec<AuditEntry> = created
                .iter()
                .map(|(i, v)| AuditEntry {
                    service: SERVICE,
                    actor: items[*i].ctx.actor.clone(),
                    action: "registry.versions.create",
                    resource: v.resource(),
                    before: None,
                    after: serde_json::to_value(v).ok(),
                    request_id: items[*i].request_id.clone(),
                    trace_id: items[*i].ctx.trace_id.clone(),
                })
                .collect();
            steward_storage::audit::append_many(&tx, audit).await?;
            let events: Vec<_> = created
                .iter()
                .map(|(i, v)| {
                    ops::envelope(
                        SERVICE,
                        &items[*i].ctx,
                        "registry.version.created",
                        v.resource(),
                        super::versions::created_event(v),
                    )
                })
                .collect();
            outbox::enqueue_many(&tx, SERVICE, &events).await?;
            let mut idem = Vec::new();
            for (i, v) in &created {
                if let Some(k) = &items[*i].key {
                    idem.push((k, serde_json::to_vec(v).map_err(Error::internal)?));
                }
            }
            idempotency::record_many(&tx, &idem).await?;
        }
        for (i, v) in created {
            out[i] = Some(Ok(v));
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::internal("version create lost"))))
            .collect())
    })
}

fn version_of(p: &Prepared, number: i64, now: i64) -> ModelVersion {
    ModelVersion {
        model: p.model.clone(),
        version: number,
        source_run: p.source_run.clone(),
        artifact_path: p.artifact_path.clone(),
        source_uri: p.source_uri.clone(),
        artifact_uri: p.artifact_uri.clone(),
        content_digest: p.content_digest.clone(),
        signature: p.signature.clone(),
        format: p.format.clone(),
        status: p.status,
        status_message: String::new(),
        description: p.description.clone(),
        tags: p.tags.clone(),
        approval: ApprovalState::Pending,
        last_review: None,
        aliases: Vec::new(),
        creator: p.ctx.actor.clone(),
        create_time: now,
        update_time: now,
        revision: 1,
    }
}

/// The idempotency key of a create (exposed so the API can peek for retries first).
pub fn key(
    model: &str,
    req: &impl serde::Serialize,
    request_id: &str,
) -> Result<Option<IdemKey>, Error> {
    IdemKey::new(
        SERVICE,
        "CreateModelVersion",
        request_id,
        &canonical(&(model, req)),
    )
}
