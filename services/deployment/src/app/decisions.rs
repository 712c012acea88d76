//! Group commit of decision records.
//!
//! A decision must be durable before its answer is sent. Each request hands its record to one
//! writer task per process and waits; the writer takes everything queued (up to
//! [`MAX_BATCH`]), inserts it with multi-row statements together with one
//! `deployment.decisions.recorded` outbox event in one transaction, and then wakes every
//! waiter. A record whose request id is already stored is not written again: its waiter is told
//! so and answers with the stored decision (a retry never doubles a record).

use std::collections::HashSet;

use steward_common::Error;
use steward_proto::events::{Decision as PbDecision, DecisionsRecorded, event_envelope::Payload};
use steward_storage::{Db, ops, outbox, with_write_tx};
use tokio::sync::{mpsc, oneshot};

use super::{Ctx, SERVICE};
use crate::domain::Decision;
use crate::store::decisions as store;

/// Most records per transaction.
pub const MAX_BATCH: usize = 1024;

/// What happened to a submitted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored now.
    New,
    /// A record with this request id was already stored (the caller reads it back).
    Exists,
}

type Reply = oneshot::Sender<Result<Written, Error>>;

/// Handle to the writer task.
#[derive(Clone)]
pub struct DecisionWriter {
    queue: mpsc::Sender<(Decision, String, Reply)>,
}

impl DecisionWriter {
    /// Starts the writer over `db`.
    pub fn spawn(db: Db) -> Self {
        let (queue, mut rx) = mpsc::channel::<(Decision, String, Reply)>(8 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let records: Vec<Decision> = batch.iter().map(|(d, _, _)| d.clone()).collect();
                let traceparent = batch.last().map(|(_, t, _)| t.clone()).unwrap_or_default();
                match write(&db, &records, &traceparent).await {
                    Ok(inserted) => {
                        for (d, _, reply) in batch {
                            let w = if inserted.contains(&d.request_id) {
                                Written::New
                            } else {
                                Written::Exists
                            };
                            let _ = reply.send(Ok(w));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, records = records.len(), "decision records not written");
                        for (_, _, reply) in batch {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Writes `d` durably (with whatever else is queued); `traceparent` rides on the event.
    pub async fn record(&self, d: Decision, traceparent: String) -> Result<Written, Error> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((d, traceparent, tx)).await.map_err(|_| {
            Error::unavailable("SHUTTING_DOWN", "the deployment service is shutting down")
        })?;
        rx.await
            .map_err(|_| Error::internal("decision writer stopped"))?
    }
}

fn to_pb(d: &Decision) -> PbDecision {
    PbDecision {
        request_id: d.request_id.clone(),
        time: Some(steward_grpc::ts(d.time)),
        deployment: format!("deployments/{}", d.deployment),
        revision: d.revision,
        variant: d.variant.clone(),
        model_version: format!("registeredModels/{}/versions/{}", d.model, d.version),
        kind: d.kind.clone(),
        input_digest: d.input_digest.clone(),
        inputs_json: d.inputs_json.clone().unwrap_or_default(),
        outputs_json: d.outputs_json.clone(),
        monitor_inputs_json: d.event_inputs_json.clone(),
        latency_us: d.latency_us,
        error: d.error.clone(),
    }
}

async fn write(db: &Db, records: &[Decision], traceparent: &str) -> Result<HashSet<String>, Error> {
    // Duplicates inside one batch: the first wins.
    let mut seen = HashSet::new();
    let unique: Vec<Decision> = records
        .iter()
        .filter(|d| seen.insert(d.request_id.clone()))
        .cloned()
        .collect();
    with_write_tx!(db, "record_decisions", |tx| {
        let inserted = store::insert_many(&tx, &unique).await?;
        let set: HashSet<String> = inserted.into_iter().collect();
        if !set.is_empty() {
            let decisions: Vec<PbDecision> = unique
                .iter()
                .filter(|d| set.contains(&d.request_id))
                .map(to_pb)
                .collect();
            let ctx = Ctx {
                traceparent: traceparent.to_string(),
                ..Default::default()
            };
            let env = ops::envelope(
                SERVICE,
                &ctx,
                "deployment.decisions.recorded",
                String::new(),
                Payload::DecisionsRecorded(DecisionsRecorded { decisions }),
            );
            outbox::enqueue(&tx, SERVICE, &env).await?;
        }
        Ok(set)
    })
}
