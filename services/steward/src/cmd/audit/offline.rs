//! The export format of `steward audit export` and its offline verification: pure functions
//! over the parsed lines, running the same chain check as the server
//! ([`steward_storage::audit::ChainCheck`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use steward_proto::audit as pb;
use steward_storage::audit::{AuditRecord, ChainCheck, ChainHead, ChainReport};

/// One line of an export: a record with every hashed field, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExportLine {
    pub service: String,
    pub seq: i64,
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub resource: String,
    /// JSON text as hashed, or null when absent.
    pub before_json: Option<String>,
    /// JSON text as hashed, or null when absent.
    pub after_json: Option<String>,
    pub request_id: String,
    pub trace_id: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&pb::AuditEvent> for ExportLine {
    fn from(e: &pb::AuditEvent) -> Self {
        // The server sends whole milliseconds; this conversion is exact.
        let time_ms = e.time.as_ref().map_or(0, |t| {
            t.seconds * 1000 + i64::from(t.nanos.div_euclid(1_000_000))
        });
        Self {
            service: e.service.clone(),
            seq: e.seq,
            time_ms,
            actor: e.actor.clone(),
            action: e.action.clone(),
            resource: e.resource.clone(),
            before_json: e.has_before.then(|| e.before_json.clone()),
            after_json: e.has_after.then(|| e.after_json.clone()),
            request_id: e.request_id.clone(),
            trace_id: e.trace_id.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

impl From<ExportLine> for AuditRecord {
    fn from(l: ExportLine) -> Self {
        AuditRecord {
            service: l.service,
            seq: l.seq,
            time: l.time_ms,
            actor: l.actor,
            action: l.action,
            resource: l.resource,
            before_json: l.before_json,
            after_json: l.after_json,
            request_id: l.request_id,
            trace_id: l.trace_id,
            prev_hash: l.prev_hash,
            hash: l.hash,
        }
    }
}

/// The records of an export (blank lines are skipped); errors name the line.
pub(crate) fn parse_export(text: &str) -> Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: ExportLine = serde_json::from_str(line)
            .with_context(|| format!("line {} is not an exported audit record", i + 1))?;
        if l.seq < 1 {
            bail!("line {}: seq must be at least 1, got {}", i + 1, l.seq);
        }
        out.push(l.into());
    }
    Ok(out)
}

/// Anchors saved by `steward audit heads` (`{"heads": [...]}`) or a bare JSON array of
/// `{"service", "seq", "hash"}`.
/// The chain heads a server reported (`GetAuditChainHeads`), as anchors for verification.
pub(crate) fn heads_from(heads: Vec<pb::ChainHead>) -> Vec<ChainHead> {
    heads
        .into_iter()
        .map(|h| ChainHead {
            service: h.service,
            seq: h.seq,
            hash: h.hash,
        })
        .collect()
}

pub(crate) fn parse_anchors(text: &str) -> Result<Vec<ChainHead>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Anchors {
        Saved { heads: Vec<ChainHead> },
        Bare(Vec<ChainHead>),
    }
    let heads = match serde_json::from_str::<Anchors>(text)
        .context("expected the JSON printed by `steward audit heads`")?
    {
        Anchors::Saved { heads } | Anchors::Bare(heads) => heads,
    };
    for (i, h) in heads.iter().enumerate() {
        if h.service.is_empty() || h.seq < 0 {
            bail!("anchor {i}: needs a service and a seq of at least 0");
        }
        if h.hash.len() != 64 || !h.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "anchor {i} ({}): hash must be 64 hexadecimal characters",
                h.service
            );
        }
    }
    Ok(heads)
}

/// Verifies an export: per service, the records (in any line order) must be consecutive by
/// seq, each hash must recompute, each `prev_hash` must be the previous record's hash, a chain
/// exported from seq 1 must start at the genesis hash (one starting later is verified from its
/// first record), and every anchor must be in the export with the same hash. A service that
/// only an anchor names is reported too (its records are missing). One report per service,
/// sorted by service.
pub(crate) fn verify_export(records: Vec<AuditRecord>, anchors: &[ChainHead]) -> Vec<ChainReport> {
    let mut chains: BTreeMap<String, Vec<AuditRecord>> = BTreeMap::new();
    for r in records {
        chains.entry(r.service.clone()).or_default().push(r);
    }
    for a in anchors {
        chains.entry(a.service.clone()).or_default();
    }
    chains
        .into_iter()
        .map(|(service, mut recs)| {
            // Export order is by time; replicas' clocks may disagree, so order by seq here.
            recs.sort_by_key(|r| r.seq);
            let mut check = ChainCheck::new(service, false).with_anchors(anchors);
            for r in &recs {
                if !check.push(r) {
                    break;
                }
            }
            check.finish()
        })
        .collect()
}

/// One human-readable line about a chain's report.
pub(crate) fn describe(r: &ChainReport) -> String {
    match (r.first_broken_seq, r.problem) {
        (Some(seq), Some(problem)) => format!(
            "{}: BROKEN at seq {seq}: {problem} ({} record(s) verified before it)",
            r.service, r.records
        ),
        _ => {
            let range = match r.first_seq {
                None => "no records".to_string(),
                Some(1) => format!(
                    "{} record(s), seq 1..{} from genesis",
                    r.records, r.last_seq
                ),
                Some(first) => format!(
                    "{} record(s), seq {first}..{}: partial export, verified from seq {first}",
                    r.records, r.last_seq
                ),
            };
            let mut s = format!("{}: ok, {range}", r.service);
            if !r.unverified_anchors.is_empty() {
                let seqs: Vec<String> = r.unverified_anchors.iter().map(i64::to_string).collect();
                s.push_str(&format!(
                    " (anchors before the export not checked: seq {})",
                    seqs.join(", ")
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_storage::audit::{GENESIS_HASH, Problem, record_hash};

    /// An export of two interleaved chains, as `steward audit export` writes it.
    fn export() -> Vec<ExportLine> {
        let mut prev: BTreeMap<&str, String> = BTreeMap::new();
        let mut seqs: BTreeMap<&str, i64> = BTreeMap::new();
        (0..12)
            .map(|i| {
                let service = if i % 3 == 0 { "registry" } else { "tracking" };
                let seq = seqs.entry(service).or_default();
                *seq += 1;
                let mut r = AuditRecord {
                    service: service.into(),
                    seq: *seq,
                    time: 1_700_000_000_000 + i,
                    actor: "alice".into(),
                    action: format!("{service}.things.update"),
                    resource: format!("things/{i}"),
                    before_json: (i % 2 == 0).then(|| "{}".to_string()),
                    after_json: Some(format!("{{\"i\":{i}}}")),
                    request_id: format!("req-{i}"),
                    trace_id: String::new(),
                    prev_hash: prev
                        .get(service)
                        .cloned()
                        .unwrap_or_else(|| GENESIS_HASH.to_string()),
                    hash: String::new(),
                };
                r.hash = record_hash(&r);
                prev.insert(service, r.hash.clone());
                ExportLine {
                    service: r.service,
                    seq: r.seq,
                    time_ms: r.time,
                    actor: r.actor,
                    action: r.action,
                    resource: r.resource,
                    before_json: r.before_json,
                    after_json: r.after_json,
                    request_id: r.request_id,
                    trace_id: r.trace_id,
                    prev_hash: r.prev_hash,
                    hash: r.hash,
                }
            })
            .collect()
    }

    /// The lines as text, through the real parser.
    fn text(lines: &[ExportLine]) -> String {
        lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect()
    }

    fn verify(lines: &[ExportLine], anchors: &[ChainHead]) -> Vec<ChainReport> {
        verify_export(parse_export(&text(lines)).unwrap(), anchors)
    }

    /// The first broken (service, seq, problem), as the command prints it.
    fn first_break(reports: &[ChainReport]) -> Option<(String, i64, Problem)> {
        reports
            .iter()
            .find_map(|r| Some((r.service.clone(), r.first_broken_seq?, r.problem?)))
    }

    fn heads(lines: &[ExportLine]) -> Vec<ChainHead> {
        let mut h: BTreeMap<String, ChainHead> = BTreeMap::new();
        for l in lines {
            h.insert(
                l.service.clone(),
                ChainHead {
                    service: l.service.clone(),
                    seq: l.seq,
                    hash: l.hash.clone(),
                },
            );
        }
        h.into_values().collect()
    }

    fn pos(lines: &[ExportLine], service: &str, seq: i64) -> usize {
        lines
            .iter()
            .position(|l| l.service == service && l.seq == seq)
            .unwrap()
    }

    #[test]
    fn an_intact_export_verifies_with_its_anchors() {
        let lines = export();
        let reports = verify(&lines, &heads(&lines));
        assert_eq!(first_break(&reports), None);
        let summary: Vec<_> = reports
            .iter()
            .map(|r| (r.service.as_str(), r.records, r.first_seq))
            .collect();
        assert_eq!(
            summary,
            vec![("registry", 4, Some(1)), ("tracking", 8, Some(1))]
        );
        assert!(describe(&reports[0]).contains("from genesis"));
        // JSON null and "{}" survive the round trip (absent is not empty).
        let parsed = parse_export(&text(&lines)).unwrap();
        assert_eq!(parsed[0].before_json.as_deref(), Some("{}"));
        assert_eq!(parsed[1].before_json, None);
    }

    #[test]
    fn a_tampered_field_is_reported_at_its_record() {
        let mut lines = export();
        let i = pos(&lines, "tracking", 3);
        lines[i].actor = "mallory".into();
        assert_eq!(
            first_break(&verify(&lines, &[])),
            Some(("tracking".into(), 3, Problem::HashMismatch))
        );
        // Absent turned into empty JSON is a change too.
        let mut lines = export();
        let i = pos(&lines, "registry", 2);
        assert!(lines[i].before_json.is_none());
        lines[i].before_json = Some(String::new());
        assert_eq!(
            first_break(&verify(&lines, &[])),
            Some(("registry".into(), 2, Problem::HashMismatch))
        );
    }

    #[test]
    fn a_deleted_line_is_a_missing_record() {
        let mut lines = export();
        lines.remove(pos(&lines, "tracking", 5));
        let reports = verify(&lines, &[]);
        assert_eq!(
            first_break(&reports),
            Some(("tracking".into(), 5, Problem::MissingRecord))
        );
        assert!(describe(&reports[1]).contains("BROKEN at seq 5: missing record"));
    }

    #[test]
    fn reordered_lines_verify_but_reordered_records_do_not() {
        // Lines out of time order (replicas' clocks disagree) are the same chain.
        let mut lines = export();
        let (a, b) = (pos(&lines, "tracking", 2), pos(&lines, "tracking", 6));
        lines.swap(a, b);
        assert_eq!(first_break(&verify(&lines, &[])), None);
        // Records moved to other positions (their seq values swapped) are not.
        let mut lines = export();
        let (a, b) = (pos(&lines, "tracking", 2), pos(&lines, "tracking", 6));
        lines[a].seq = 6;
        lines[b].seq = 2;
        assert_eq!(
            first_break(&verify(&lines, &[])),
            Some(("tracking".into(), 2, Problem::HashMismatch))
        );
        // A line repeated is reported too.
        let mut lines = export();
        let dup = lines[pos(&lines, "tracking", 4)].clone();
        lines.push(dup);
        assert_eq!(
            first_break(&verify(&lines, &[])),
            Some(("tracking".into(), 4, Problem::UnexpectedRecord))
        );
    }

    #[test]
    fn a_truncated_tail_verifies_alone_and_fails_against_the_anchors() {
        let full = export();
        let anchors = heads(&full);
        let mut lines = full.clone();
        lines.retain(|l| !(l.service == "tracking" && l.seq > 6));
        assert_eq!(first_break(&verify(&lines, &[])), None);
        assert_eq!(
            first_break(&verify(&lines, &anchors)),
            Some(("tracking".into(), 8, Problem::AnchorNotFound))
        );
        // A chain missing entirely from the export is reported when anchored.
        let only_registry: Vec<_> = full
            .iter()
            .filter(|l| l.service == "registry")
            .cloned()
            .collect();
        assert_eq!(
            first_break(&verify(&only_registry, &anchors)),
            Some(("tracking".into(), 8, Problem::AnchorNotFound))
        );
        // An anchor whose hash is not the record's.
        let mut wrong = anchors.clone();
        wrong[1].seq = 5;
        assert_eq!(
            first_break(&verify(&full, &wrong)),
            Some(("tracking".into(), 5, Problem::AnchorHashDiffers))
        );
    }

    #[test]
    fn a_partial_export_is_verified_from_its_first_record() {
        let full = export();
        let anchors = heads(&full);
        // The first 5 lines left out: each chain starts later than seq 1.
        let lines = full[5..].to_vec();
        let reports = verify(&lines, &anchors);
        assert_eq!(first_break(&reports), None);
        let firsts: Vec<_> = reports.iter().map(|r| r.first_seq).collect();
        assert_eq!(firsts, vec![Some(3), Some(4)]);
        let line = describe(&reports[1]);
        assert!(
            line.contains("partial export, verified from seq 4"),
            "{line}"
        );
        // Tampering inside a partial export is still found, including its first record.
        let mut lines = full[5..].to_vec();
        lines[0].resource = "things/else".into();
        let first = (lines[0].service.clone(), lines[0].seq);
        assert_eq!(
            first_break(&verify(&lines, &[])),
            Some((first.0, first.1, Problem::HashMismatch))
        );
    }

    #[test]
    fn export_lines_carry_the_hashed_fields_exactly() {
        // As the server sends a record: whole-millisecond timestamp, absent JSON as
        // has_* = false, empty JSON text kept apart from absent.
        for (time, before) in [(1_700_000_000_123, None), (-1, Some(String::new()))] {
            let mut r = AuditRecord {
                service: "tracking".into(),
                seq: 1,
                time,
                actor: "alice".into(),
                action: "tracking.runs.create".into(),
                resource: "experiments/e/runs/r".into(),
                before_json: before,
                after_json: Some("{\"a\":1}".into()),
                request_id: "req".into(),
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                prev_hash: GENESIS_HASH.into(),
                hash: String::new(),
            };
            r.hash = record_hash(&r);
            let e = pb::AuditEvent {
                service: r.service.clone(),
                seq: r.seq,
                time: Some(prost_types::Timestamp {
                    seconds: time.div_euclid(1000),
                    nanos: (time.rem_euclid(1000) * 1_000_000) as i32,
                }),
                actor: r.actor.clone(),
                action: r.action.clone(),
                resource: r.resource.clone(),
                before_json: r.before_json.clone().unwrap_or_default(),
                after_json: r.after_json.clone().unwrap_or_default(),
                has_before: r.before_json.is_some(),
                has_after: r.after_json.is_some(),
                request_id: r.request_id.clone(),
                trace_id: r.trace_id.clone(),
                prev_hash: r.prev_hash.clone(),
                hash: r.hash.clone(),
            };
            let line = serde_json::to_string(&ExportLine::from(&e)).unwrap();
            let back = parse_export(&line).unwrap().remove(0);
            assert_eq!(back, r);
            assert_eq!(record_hash(&back), r.hash);
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let err = parse_export("{\"service\":\"x\"}\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
        let mut lines = export();
        lines[0].seq = 0;
        assert!(parse_export(&text(&lines)).is_err());
        let anchors = heads(&export());
        let saved = serde_json::json!({ "time": "2026-01-01T00:00:00Z", "heads": anchors });
        assert_eq!(parse_anchors(&saved.to_string()).unwrap(), anchors);
        assert_eq!(
            parse_anchors(&serde_json::to_string(&anchors).unwrap()).unwrap(),
            anchors
        );
        assert!(parse_anchors(r#"[{"service":"s","seq":1,"hash":"xyz"}]"#).is_err());
    }
}
