//! The chain check as a pure function: fed one chain's records in sequence order, it recomputes
//! each hash, follows the links, compares heads and anchors, and reports the first break and
//! what it was. The database verifier ([`super::verify_chain_with`]) and the offline verifier of
//! exports (`steward audit verify FILE`) both run it, so they agree on every verdict.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AuditRecord, GENESIS_HASH, record_hash};

/// A position in a chain and the hash of the record there: the stored head of a chain, or an
/// anchor (a head recorded earlier, elsewhere) that the chain must still contain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHead {
    /// Service chain.
    pub service: String,
    /// Sequence number of the record (0 = the empty chain).
    pub seq: i64,
    /// Hash of the record at `seq` ([`GENESIS_HASH`] at 0), lowercase hex.
    pub hash: String,
}

/// What was wrong at the first broken position of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The record's stored hash is not the hash of its fields (a field was edited).
    HashMismatch,
    /// The record's `prev_hash` is not the previous record's hash (a record was replaced or
    /// moved).
    BrokenLink,
    /// The sequence skips this number (a record was deleted).
    MissingRecord,
    /// A second record with a sequence number already seen (only possible in an export).
    UnexpectedRecord,
    /// The chain's head row does not point at its last record (the tail was truncated or
    /// records were added behind the head's back).
    HeadMismatch,
    /// The chain no longer reaches an anchor's position (the tail was truncated).
    AnchorNotFound,
    /// The record at an anchor's position has another hash (the chain was rewritten).
    AnchorHashDiffers,
}

impl Problem {
    /// The stable text used in reports and on the wire, e.g. `"hash mismatch"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::HashMismatch => "hash mismatch",
            Problem::BrokenLink => "broken link",
            Problem::MissingRecord => "missing record",
            Problem::UnexpectedRecord => "unexpected record",
            Problem::HeadMismatch => "head does not match",
            Problem::AnchorNotFound => "anchor not found",
            Problem::AnchorHashDiffers => "anchor hash differs",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Service chain.
    pub service: String,
    /// Records verified before the first break (all of them when the chain is intact).
    pub records: i64,
    /// Sequence number of the first record verified (1 unless a partial export was checked);
    /// `None` when there were no records.
    pub first_seq: Option<i64>,
    /// Sequence number of the last record verified (0 when none).
    pub last_seq: i64,
    /// First sequence number whose record, link, hash, head or anchor does not verify.
    pub first_broken_seq: Option<i64>,
    /// What was wrong at `first_broken_seq`.
    pub problem: Option<Problem>,
    /// The chain's stored head (database verification only; `None` offline or when the head
    /// row is missing).
    pub head: Option<ChainHead>,
    /// Anchors that could not be checked because they lie before the first record of a partial
    /// export (their sequence numbers).
    pub unverified_anchors: Vec<i64>,
}

impl ChainReport {
    /// Whether the chain verified.
    pub fn ok(&self) -> bool {
        self.first_broken_seq.is_none()
    }
}

/// The incremental check of one chain. Create it with [`ChainCheck::new`], add the anchors and
/// the expected head, [`push`](ChainCheck::push) the records in sequence order, then
/// [`finish`](ChainCheck::finish).
#[derive(Debug, Clone)]
pub struct ChainCheck {
    service: String,
    from_genesis: bool,
    anchors: BTreeMap<i64, String>,
    head: Option<(i64, String)>,
    first_seq: Option<i64>,
    last_seq: i64,
    last_hash: String,
    records: i64,
    broken: Option<(i64, Problem)>,
}

impl ChainCheck {
    /// A check of `service`'s chain. With `from_genesis` the chain must start at seq 1 after
    /// [`GENESIS_HASH`] (a database chain); without it, the first record pushed may be any
    /// seq and its `prev_hash` is taken as given (a partial export), unless it is seq 1.
    pub fn new(service: impl Into<String>, from_genesis: bool) -> Self {
        Self {
            service: service.into(),
            from_genesis,
            anchors: BTreeMap::new(),
            head: None,
            first_seq: None,
            last_seq: 0,
            last_hash: GENESIS_HASH.to_string(),
            records: 0,
            broken: None,
        }
    }

    /// Adds the anchors of this check's service from `anchors` (others are ignored): the chain
    /// must contain a record at each anchor's seq with the anchor's hash (compared ignoring hex
    /// case). An anchor at seq 0 must be [`GENESIS_HASH`].
    pub fn with_anchors<'a>(mut self, anchors: impl IntoIterator<Item = &'a ChainHead>) -> Self {
        for a in anchors {
            if a.service != self.service {
                continue;
            }
            let hash = a.hash.to_ascii_lowercase();
            if a.seq <= 0 {
                if hash != GENESIS_HASH {
                    self.fail(a.seq.max(0), Problem::AnchorHashDiffers);
                }
                continue;
            }
            match self.anchors.get(&a.seq) {
                // Two anchors disagree about one position: at least one of them cannot hold.
                Some(h) if *h != hash => self.fail(a.seq, Problem::AnchorHashDiffers),
                _ => {
                    self.anchors.insert(a.seq, hash);
                }
            }
        }
        self
    }

    /// Sets the head the chain is expected to end at (the stored head row): the record at its
    /// seq must have its hash, and the chain must reach it.
    pub fn with_head(mut self, seq: i64, hash: &str) -> Self {
        self.head = Some((seq, hash.to_ascii_lowercase()));
        self
    }

    /// Whether a break has been found (further records are ignored).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Sequence number and hash of the last record verified (0 and [`GENESIS_HASH`] before the
    /// first).
    pub fn last(&self) -> (i64, &str) {
        (self.last_seq, &self.last_hash)
    }

    /// Records a break at `seq`, keeping the lowest position if one was already found.
    pub fn fail(&mut self, seq: i64, problem: Problem) {
        if self.broken.is_none_or(|(s, _)| seq < s) {
            self.broken = Some((seq, problem));
        }
    }

    /// Checks the next record of the chain (records must come in ascending seq order); returns
    /// `false` once the chain is broken.
    pub fn push(&mut self, r: &AuditRecord) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let started = self.first_seq.is_some();
        let expected = if started {
            self.last_seq + 1
        } else if self.from_genesis {
            1
        } else {
            r.seq.max(1)
        };
        if r.seq < expected {
            self.fail(r.seq, Problem::UnexpectedRecord);
            return false;
        }
        if r.seq > expected {
            self.fail(expected, Problem::MissingRecord);
            return false;
        }
        if record_hash(r) != r.hash {
            self.fail(r.seq, Problem::HashMismatch);
            return false;
        }
        if !started && r.seq > 1 {
            // A partial export: the first record's prev_hash is the only evidence of the
            // record before it, so an anchor there is checked against it.
            let base = r.seq - 1;
            if self.anchors.get(&base).is_some_and(|a| *a != r.prev_hash) {
                self.fail(base, Problem::AnchorHashDiffers);
                return false;
            }
        } else if r.prev_hash != self.last_hash {
            self.fail(r.seq, Problem::BrokenLink);
            return false;
        }
        if self.anchors.get(&r.seq).is_some_and(|a| *a != r.hash) {
            self.fail(r.seq, Problem::AnchorHashDiffers);
            return false;
        }
        if self
            .head
            .as_ref()
            .is_some_and(|(s, h)| *s == r.seq && *h != r.hash)
        {
            self.fail(r.seq, Problem::HeadMismatch);
            return false;
        }
        self.records += 1;
        self.first_seq.get_or_insert(r.seq);
        self.last_seq = r.seq;
        self.last_hash.clone_from(&r.hash);
        true
    }

    /// Ends the check: the chain must reach the expected head and every anchor.
    pub fn finish(mut self) -> ChainReport {
        if self.broken.is_none() {
            if let Some((seq, _)) = self.head
                && seq > self.last_seq
            {
                // The head names a record past the end: the tail was truncated.
                self.fail(self.last_seq + 1, Problem::HeadMismatch);
            }
            if let Some((&seq, _)) = self.anchors.range(self.last_seq + 1..).next() {
                // Reported at the anchor's own position: that is the record the anchor vouches
                // for, and the one an operator can look up in the anchor they stored.
                self.fail(seq, Problem::AnchorNotFound);
            }
        }
        // Anchors before a partial export's first record (and its prev_hash) cannot be checked.
        let unverified_anchors = match self.first_seq {
            Some(first) if self.broken.is_none() && first > 2 => {
                self.anchors.range(1..first - 1).map(|(s, _)| *s).collect()
            }
            _ => Vec::new(),
        };
        ChainReport {
            service: self.service,
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_broken_seq: self.broken.map(|(s, _)| s),
            problem: self.broken.map(|(_, p)| p),
            head: None,
            unverified_anchors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(service: &str, n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    service: service.into(),
                    seq,
                    time: 1_700_000_000_000 + seq,
                    actor: "alice".into(),
                    action: "test.things.create".into(),
                    resource: format!("things/{seq}"),
                    before_json: None,
                    after_json: Some(format!("{{\"i\":{seq}}}")),
                    request_id: String::new(),
                    trace_id: String::new(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = record_hash(&r);
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn run(check: ChainCheck, recs: &[AuditRecord]) -> ChainReport {
        let mut check = check;
        for r in recs {
            if !check.push(r) {
                break;
            }
        }
        check.finish()
    }

    fn anchor(r: &AuditRecord) -> ChainHead {
        ChainHead {
            service: r.service.clone(),
            seq: r.seq,
            hash: r.hash.clone(),
        }
    }

    fn broken(rep: &ChainReport) -> Option<(i64, Problem)> {
        rep.first_broken_seq.zip(rep.problem)
    }

    #[test]
    fn intact_chain_verifies_with_head_and_anchors() {
        let recs = chain("s", 10);
        let check = ChainCheck::new("s", true)
            .with_anchors(&[anchor(&recs[4]), anchor(&recs[9])])
            .with_head(10, &recs[9].hash.to_uppercase());
        let rep = run(check, &recs);
        assert!(rep.ok(), "{rep:?}");
        assert_eq!(
            (rep.records, rep.first_seq, rep.last_seq),
            (10, Some(1), 10)
        );
    }

    #[test]
    fn each_problem_is_reported_at_its_position() {
        let recs = chain("s", 10);
        let mut edited = recs.clone();
        edited[3].actor = "mallory".into();
        let rep = run(ChainCheck::new("s", true), &edited);
        assert_eq!(broken(&rep), Some((4, Problem::HashMismatch)));
        assert_eq!(rep.records, 3);

        let mut gap = recs.clone();
        gap.remove(5);
        assert_eq!(
            broken(&run(ChainCheck::new("s", true), &gap)),
            Some((6, Problem::MissingRecord))
        );

        // A record rewritten with a valid hash of its own breaks the next link.
        let mut forged = recs.clone();
        forged[3].actor = "mallory".into();
        forged[3].hash = record_hash(&forged[3]);
        assert_eq!(
            broken(&run(ChainCheck::new("s", true), &forged)),
            Some((5, Problem::BrokenLink))
        );

        let mut dup = recs.clone();
        dup.insert(3, recs[2].clone());
        assert_eq!(
            broken(&run(ChainCheck::new("s", false), &dup)),
            Some((3, Problem::UnexpectedRecord))
        );

        // Not starting at 1 is a missing record for a database chain.
        assert_eq!(
            broken(&run(ChainCheck::new("s", true), &recs[2..])),
            Some((1, Problem::MissingRecord))
        );
    }

    #[test]
    fn heads_catch_truncation_and_rewrites() {
        let recs = chain("s", 10);
        let check = ChainCheck::new("s", true).with_head(10, &recs[9].hash);
        assert_eq!(
            broken(&run(check, &recs[..8])),
            Some((9, Problem::HeadMismatch))
        );
        let check = ChainCheck::new("s", true).with_head(5, &recs[3].hash);
        assert_eq!(broken(&run(check, &recs)), Some((5, Problem::HeadMismatch)));
    }

    #[test]
    fn anchors_catch_truncation_and_rewrites() {
        let recs = chain("s", 10);
        let check = ChainCheck::new("s", true).with_anchors(&[anchor(&recs[9])]);
        let rep = run(check, &recs[..8]);
        assert_eq!(broken(&rep), Some((10, Problem::AnchorNotFound)));
        assert_eq!(rep.records, 8);

        // A consistently rewritten chain (every hash recomputed) is caught only by an anchor.
        let mut other = chain("s", 10);
        for r in &mut other {
            r.actor = "mallory".into();
        }
        let mut prev = GENESIS_HASH.to_string();
        for r in &mut other {
            r.prev_hash = prev.clone();
            r.hash = record_hash(r);
            prev.clone_from(&r.hash);
        }
        assert!(run(ChainCheck::new("s", true), &other).ok());
        let check = ChainCheck::new("s", true).with_anchors(&[anchor(&recs[6])]);
        assert_eq!(
            broken(&run(check, &other)),
            Some((7, Problem::AnchorHashDiffers))
        );

        // Anchors of other services are ignored; a bad genesis anchor is reported at 0.
        let mut foreign = anchor(&recs[9]);
        foreign.service = "t".into();
        assert!(run(ChainCheck::new("s", true).with_anchors(&[foreign]), &recs).ok());
        let genesis = ChainHead {
            service: "s".into(),
            seq: 0,
            hash: "ab".repeat(32),
        };
        assert_eq!(
            broken(&run(
                ChainCheck::new("s", true).with_anchors(&[genesis]),
                &recs
            )),
            Some((0, Problem::AnchorHashDiffers))
        );
    }

    #[test]
    fn partial_chains_verify_from_their_first_record() {
        let recs = chain("s", 10);
        let check = ChainCheck::new("s", false).with_anchors(&[
            anchor(&recs[1]),
            anchor(&recs[3]),
            anchor(&recs[7]),
        ]);
        let rep = run(check, &recs[4..]);
        assert!(rep.ok(), "{rep:?}");
        assert_eq!(rep.first_seq, Some(5));
        // The anchor at 4 was checked against record 5's prev_hash; the one at 2 could not be.
        assert_eq!(rep.unverified_anchors, vec![2]);

        let mut wrong = anchor(&recs[3]);
        wrong.hash = recs[2].hash.clone();
        let check = ChainCheck::new("s", false).with_anchors(&[wrong]);
        assert_eq!(
            broken(&run(check, &recs[4..])),
            Some((4, Problem::AnchorHashDiffers))
        );

        // A partial chain that does start at 1 must start from genesis.
        let mut first = recs[0].clone();
        first.prev_hash = recs[5].hash.clone();
        first.hash = record_hash(&first);
        assert_eq!(
            broken(&run(ChainCheck::new("s", false), &[first])),
            Some((1, Problem::BrokenLink))
        );
    }
}
