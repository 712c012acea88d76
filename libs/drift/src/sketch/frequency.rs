//! Exact mergeable frequency table for categorical features.

use super::codec::{Reader, Writer};
use crate::categorical::Counts;
use crate::{DriftError, Result};

const MAGIC: &[u8; 4] = b"SDFS";
const VERSION: u8 = 1;

/// Category counts plus a missing-value count; merging adds counts, so every
/// statistic computed from it is exact. Memory grows with the number of distinct
/// categories: the caller decides how to cap unbounded label sets (e.g. by mapping
/// rare labels to an "other" label before inserting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrequencySketch {
    counts: Counts,
    missing: u64,
}

impl FrequencySketch {
    /// An empty table.
    pub fn new() -> FrequencySketch {
        FrequencySketch::default()
    }

    /// Builds from existing counts (zero counts are dropped).
    pub fn from_counts(counts: Counts) -> FrequencySketch {
        FrequencySketch {
            counts: counts.into_iter().filter(|(_, c)| *c > 0).collect(),
            missing: 0,
        }
    }

    /// Adds one occurrence of `label`.
    pub fn insert(&mut self, label: &str) {
        self.insert_n(label, 1);
    }

    /// Adds `n` occurrences of `label`.
    pub fn insert_n(&mut self, label: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.counts.get_mut(label) {
            Some(c) => *c += n,
            None => {
                self.counts.insert(label.to_string(), n);
            }
        }
    }

    /// Adds `n` missing values.
    pub fn insert_missing(&mut self, n: u64) {
        self.missing += n;
    }

    /// Adds another table's counts.
    pub fn merge(&mut self, other: &FrequencySketch) {
        for (k, &c) in &other.counts {
            self.insert_n(k, c);
        }
        self.missing += other.missing;
    }

    /// Counts per category.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Non-missing rows.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Missing rows.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// `missing / (count + missing)`, 0 for an empty table.
    pub fn missing_rate(&self) -> f64 {
        let total = self.count() + self.missing;
        if total == 0 {
            0.0
        } else {
            self.missing as f64 / total as f64
        }
    }

    /// Serialises to bytes (`SDFS`, version 1; keys in ascending order).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new(MAGIC, VERSION);
        w.u64(self.missing);
        w.len_u32(self.counts.len())?;
        for (k, &c) in &self.counts {
            w.len_u32(k.len())?;
            w.bytes(k.as_bytes());
            w.u64(c);
        }
        Ok(w.buf)
    }

    /// Decodes [`FrequencySketch::to_bytes`] (UTF-8 keys, strictly ascending,
    /// positive counts).
    pub fn from_bytes(bytes: &[u8]) -> Result<FrequencySketch> {
        let mut r = Reader::new(bytes, MAGIC, VERSION)?;
        let missing = r.u64()?;
        let n = r.len_u32(12)?;
        let mut counts = Counts::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let len = r.len_u32(1)?;
            let key = std::str::from_utf8(r.bytes(len)?)
                .map_err(|_| DriftError::Decode("category is not UTF-8".into()))?
                .to_string();
            let c = r.u64()?;
            if c == 0 || last.as_ref().is_some_and(|l| *l >= key) {
                return Err(DriftError::Decode(
                    "categories not ascending or zero count".into(),
                ));
            }
            last = Some(key.clone());
            counts.insert(key, c);
        }
        r.finish()?;
        Ok(FrequencySketch { counts, missing })
    }
}
