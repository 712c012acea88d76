//! Group commit of decision records.
//!
//! A decision must be durable before its answer is sent. Each request hands its record to one
//! writer per process and waits; the writer takes everything queued (up to [`MAX_BATCH`]),
//! inserts it together with one `deployment.decisions.recorded` outbox event in one
//! transaction, and then wakes every waiter. A record whose request id is already stored is
//! not written again: its waiter is told so and answers with the stored decision (a retry
//! never doubles a record; of two requests with one id in the same batch the first is
//! written).
//!
//! On a SQLite file the writer is a thread that owns a write connection
//! ([`steward_storage::direct`]): a batch is one transaction run in that thread, without the
//! pool's hand-offs between threads per statement. On Postgres (and in-memory SQLite) it is
//! a task writing through the pool with multi-row statements.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steward_common::Error;
use steward_proto::events::{
    Decision as PbDecision, DecisionsRecorded, EventEnvelope, event_envelope::Payload,
};
use steward_storage::direct::{DirectTx, DirectWriter};
use steward_storage::{Db, ops, outbox, with_write_tx};
use tokio::sync::{mpsc, oneshot};

use super::{Ctx, SERVICE};
use crate::domain::Decision;
use crate::store::decisions as store;

/// Most records per transaction.
pub const MAX_BATCH: usize = 1024;

/// Least time between taking two batches off the queue on a SQLite file when the first held
/// more than one record (a batch delayed by the write gate is not delayed again). Every commit appends each page it changed to the write-ahead log (8-10
/// pages for a batch of decisions, whatever its size), so a writer that commits as soon as
/// one record is queued writes ~10 KB per decision under load (280 MB/s at 30,000 routes/s
/// on the reference machine); spaced commits carry several records each. A lone client's
/// record, or one after a quiet spell, is committed at once.
pub const COMMIT_SPACING: Duration = Duration::from_micros(400);

/// What happened to a submitted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored now.
    New,
    /// A record with this request id was already stored (the caller reads it back).
    Exists,
}

type Reply = oneshot::Sender<Result<Written, Error>>;

/// A queued record: the decision, the traceparent of its request, and its waiter.
type Queued = (Decision, String, Reply);

/// Handle to the writer.
#[derive(Clone)]
pub struct DecisionWriter {
    queue: mpsc::Sender<Queued>,
}

impl DecisionWriter {
    /// Starts the writer over `db`: a thread with its own connection on a SQLite file, else
    /// a task on the pool (call within a Tokio runtime).
    pub fn spawn(db: Db) -> Self {
        let (queue, rx) = mpsc::channel::<Queued>(8 * MAX_BATCH);
        let direct = db.direct_writer().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "decision writer: no write connection of its own; writing through the pool");
            None
        });
        match direct {
            Some(w) => {
                // If the thread cannot be started, its closure never ran and the queue is
                // still here for the pool writer; if the thread panics, the pool writer takes
                // over the queue (the batch in flight fails, its transaction rolled back).
                let slot = Arc::new(std::sync::Mutex::new(Some(rx)));
                let theirs = slot.clone();
                let (pool_db, runtime) = (db.clone(), tokio::runtime::Handle::current());
                let started = std::thread::Builder::new()
                    .name("decision-writer".into())
                    .spawn(move || {
                        let rx = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
                        let Some(mut rx) = rx else { return };
                        let run = std::panic::AssertUnwindSafe(|| direct_loop(w, &mut rx));
                        if let Err(panic) = std::panic::catch_unwind(run) {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| (*s).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            tracing::error!(panic = %what, "the decision writer thread panicked; writing decisions through the pool from now on");
                            runtime.spawn(pool_loop(pool_db, rx));
                        }
                    });
                if let Err(e) = started {
                    tracing::warn!(error = %e, "decision writer thread not started; writing through the pool");
                    if let Some(rx) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        tokio::spawn(pool_loop(db, rx));
                    }
                }
            }
            None => {
                tokio::spawn(pool_loop(db, rx));
            }
        }
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

/// `first` and whatever else is queued now, up to [`MAX_BATCH`].
fn batch_from(first: Queued, rx: &mut mpsc::Receiver<Queued>) -> Vec<Queued> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch
}

/// Answers every waiter of `batch`: of the ids in `inserted`, the first record of each in the
/// batch was written; every other record was already stored.
fn reply(batch: Vec<Queued>, result: Result<HashSet<String>, Error>) {
    match result {
        Ok(inserted) => {
            let mut answered = HashSet::new();
            for (d, _, reply) in batch {
                let w = if inserted.contains(&d.request_id) && answered.insert(d.request_id) {
                    Written::New
                } else {
                    Written::Exists
                };
                let _ = reply.send(Ok(w));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, records = batch.len(), "decision records not written");
            for (_, _, reply) in batch {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// The writer thread on a SQLite file: one transaction per batch on its own connection (see
/// [`COMMIT_SPACING`]).
fn direct_loop(mut w: DirectWriter, rx: &mut mpsc::Receiver<Queued>) {
    let mut last: Option<(Instant, usize)> = None;
    while let Some(first) = rx.blocking_recv() {
        let wait = wait_before_commit(last, Instant::now(), COMMIT_SPACING);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let started = Instant::now();
        let batch = batch_from(first, rx);
        last = Some((started, batch.len()));
        let result = w.write(|tx| write_direct(tx, &batch));
        reply(batch, result);
    }
}

/// How long the writer waits before taking its next batch, given when it took the last one
/// and how many records that held: after a batch of several records (requests arrive
/// concurrently) until `spacing` after that, else not at all (a lone client waits for no one).
fn wait_before_commit(last: Option<(Instant, usize)>, now: Instant, spacing: Duration) -> Duration {
    match last {
        Some((started, records)) if records > 1 => {
            (started + spacing).saturating_duration_since(now)
        }
        _ => Duration::ZERO,
    }
}

/// The writer task on the pool.
async fn pool_loop(db: Db, mut rx: mpsc::Receiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let batch = batch_from(first, &mut rx);
        let result = write_pool(&db, &batch).await;
        reply(batch, result);
    }
}

/// The traceparent the batch's event carries (its last request's).
fn traceparent_of(batch: &[Queued]) -> &str {
    batch.last().map(|(_, t, _)| t.as_str()).unwrap_or_default()
}

/// The `deployment.decisions.recorded` event of `written`.
fn event<'a>(written: impl Iterator<Item = &'a Decision>, traceparent: &str) -> EventEnvelope {
    let ctx = Ctx {
        traceparent: traceparent.to_string(),
        ..Default::default()
    };
    ops::envelope(
        SERVICE,
        &ctx,
        "deployment.decisions.recorded",
        String::new(),
        Payload::DecisionsRecorded(DecisionsRecorded {
            decisions: written.map(to_pb).collect(),
        }),
    )
}

/// One batch on the writer thread's transaction; returns the request ids written.
fn write_direct(tx: &mut DirectTx<'_>, batch: &[Queued]) -> Result<HashSet<String>, Error> {
    let mut inserted = HashSet::new();
    let mut written = Vec::new();
    for (d, _, _) in batch {
        if store::insert_direct(tx, d)? {
            inserted.insert(d.request_id.clone());
            written.push(d);
        }
    }
    if !written.is_empty() {
        let env = event(written.into_iter(), traceparent_of(batch));
        outbox::enqueue_direct(tx, SERVICE, &env)?;
    }
    Ok(inserted)
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

/// One batch through the pool; returns the request ids written.
async fn write_pool(db: &Db, batch: &[Queued]) -> Result<HashSet<String>, Error> {
    // Duplicates inside one batch: the first is offered (the others are answered `Exists`).
    let mut seen = HashSet::new();
    let unique: Vec<Decision> = batch
        .iter()
        .map(|(d, _, _)| d)
        .filter(|d| seen.insert(d.request_id.clone()))
        .cloned()
        .collect();
    let traceparent = traceparent_of(batch);
    with_write_tx!(db, "record_decisions", |tx| {
        let inserted = store::insert_many(&tx, &unique).await?;
        let set: HashSet<String> = inserted.into_iter().collect();
        if !set.is_empty() {
            let env = event(
                unique.iter().filter(|d| set.contains(&d.request_id)),
                traceparent,
            );
            outbox::enqueue(&tx, SERVICE, &env).await?;
        }
        Ok(set)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: &str) -> (Queued, oneshot::Receiver<Result<Written, Error>>) {
        let (tx, rx) = oneshot::channel();
        let d = Decision {
            request_id: id.into(),
            time: 1,
            deployment: "d".into(),
            revision: 1,
            variant: "stable".into(),
            model: "m".into(),
            version: 1,
            kind: "route".into(),
            input_digest: String::new(),
            inputs_json: None,
            inputs_erased: false,
            event_inputs_json: String::new(),
            outputs_json: String::new(),
            latency_us: 1,
            error: String::new(),
            routing_key: String::new(),
        };
        ((d, String::new(), tx), rx)
    }

    #[test]
    fn of_one_request_id_in_a_batch_only_the_first_is_new() {
        let (batch, answers): (Vec<_>, Vec<_>) =
            ["a", "b", "a", "c"].into_iter().map(queued).unzip();
        // "c" was stored before this batch.
        reply(batch, Ok(["a", "b"].map(String::from).into()));
        let got: Vec<Written> = answers
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap().unwrap())
            .collect();
        assert_eq!(
            got,
            [Written::New, Written::New, Written::Exists, Written::Exists]
        );
    }

    #[test]
    fn commits_are_spaced_only_after_a_batch_of_several_records() {
        let (t0, sp) = (Instant::now(), COMMIT_SPACING);
        assert_eq!(wait_before_commit(None, t0, sp), Duration::ZERO);
        // A lone client: one record per batch, never held back.
        assert_eq!(wait_before_commit(Some((t0, 1)), t0, sp), Duration::ZERO);
        // Concurrent requests: the rest of the spacing, then nothing.
        let quarter = sp / 4;
        assert_eq!(
            wait_before_commit(Some((t0, 5)), t0 + quarter, sp),
            sp - quarter
        );
        assert_eq!(
            wait_before_commit(Some((t0, 5)), t0 + sp, sp),
            Duration::ZERO
        );
        assert_eq!(
            wait_before_commit(Some((t0, 5)), t0 + 2 * sp, sp),
            Duration::ZERO
        );
    }

    #[test]
    fn a_failed_batch_fails_every_waiter() {
        let (batch, answers): (Vec<_>, Vec<_>) = ["a", "b"].into_iter().map(queued).unzip();
        reply(
            batch,
            Err(Error::unavailable("DATABASE_UNAVAILABLE", "down")),
        );
        for mut rx in answers {
            assert_eq!(
                rx.try_recv().unwrap().unwrap_err().reason,
                "DATABASE_UNAVAILABLE"
            );
        }
    }
}
