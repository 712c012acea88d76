//! Verification of the chains stored in the database.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use steward_common::Error;

use super::query::head_of;
use super::{ChainCheck, ChainHead, ChainReport, GENESIS_HASH, Problem, list, list_services};

/// Records read per query while verifying.
const PAGE: u64 = 1000;

/// Recomputes every hash of `service`'s chain, in pages, and checks the links and the head.
/// Same as [`verify_chain_with`] without anchors.
pub async fn verify_chain<C: ConnectionTrait>(c: &C, service: &str) -> Result<ChainReport, Error> {
    verify_chain_with(c, service, &[]).await
}

/// Verifies `service`'s chain: every record present from seq 1, each hash recomputed, each
/// link followed; the stored head must point at the last record (catches truncation of the
/// tail by anyone who does not also rewrite the head row); and each anchor of `anchors` for
/// this service (others are ignored) must still be in the chain with the same hash (catches
/// truncation even when the head row was rewritten too). Reports the first break.
///
/// Safe while the service appends: the head is read before the records, and records appended
/// after it are accepted when a second read of the head covers them.
pub async fn verify_chain_with<C: ConnectionTrait>(
    c: &C,
    service: &str,
    anchors: &[ChainHead],
) -> Result<ChainReport, Error> {
    let before = head_of(c, service).await?;
    let (head_seq, head_hash) = before
        .as_ref()
        .map_or((0, GENESIS_HASH), |h| (h.seq, h.hash.as_str()));
    let mut check = ChainCheck::new(service, true)
        .with_anchors(anchors)
        .with_head(head_seq, head_hash);
    let mut after = 0;
    'scan: loop {
        let page = list(c, service, None, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if !check.push(r) {
                break 'scan;
            }
        }
        if (page.len() as u64) < PAGE {
            break;
        }
    }
    let mut head = before;
    let (last_seq, last_hash) = check.last();
    let (last_seq, last_hash) = (last_seq, last_hash.to_string());
    if !check.is_broken() && last_seq > head_seq {
        // Records past the head read first: appended since, or added behind the head's back.
        head = head_of(c, service).await?;
        let (seq, hash) = head
            .as_ref()
            .map_or((0, GENESIS_HASH), |h| (h.seq, h.hash.as_str()));
        if seq < last_seq {
            check.fail(seq + 1, Problem::HeadMismatch);
        } else if seq == last_seq && !hash.eq_ignore_ascii_case(&last_hash) {
            check.fail(seq, Problem::HeadMismatch);
        }
    }
    let mut report = check.finish();
    report.head = head;
    Ok(report)
}

/// Verifies every chain (see [`verify_chain_with`]): those with records or a head row, plus
/// any chain named only by an anchor (a chain deleted entirely is then reported).
pub async fn verify_all<C: ConnectionTrait>(
    c: &C,
    anchors: &[ChainHead],
) -> Result<Vec<ChainReport>, Error> {
    let mut services: BTreeSet<String> = list_services(c).await?.into_iter().collect();
    services.extend(anchors.iter().map(|a| a.service.clone()));
    let mut out = Vec::with_capacity(services.len());
    for s in services {
        out.push(verify_chain_with(c, &s, anchors).await?);
    }
    Ok(out)
}
