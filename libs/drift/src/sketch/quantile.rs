//! Deterministic mergeable quantile sketch with a certified rank-error bound.

use super::codec::{Reader, Writer};
use crate::{DriftError, Result, Side, check_sorted};

/// Default level capacity `k`.
pub const DEFAULT_K: u32 = 2048;
/// Smallest accepted `k`.
pub const MIN_K: u32 = 8;
/// Largest accepted `k`.
pub const MAX_K: u32 = 1 << 20;
/// Distinct values tracked exactly (with their counts) before giving up.
pub const DISTINCT_CAP: usize = 64;

const MAGIC: &[u8; 4] = b"SDQS";
const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Default)]
struct Level {
    /// Items of weight `2^h` (unsorted between compactions).
    items: Vec<f64>,
    /// Compactions done at this level (its parity alternates the kept item).
    compactions: u64,
}

/// Mergeable quantile sketch of a numeric feature (see the [module docs](super)
/// for the algorithm and its error bound), plus exact count, missing count,
/// minimum, maximum, mean and variance, and exact value counts while the
/// feature has at most [`DISTINCT_CAP`] distinct values.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    k: u32,
    count: u64,
    missing: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
    rank_error: u64,
    distinct: Option<Vec<(f64, u64)>>,
    levels: Vec<Level>,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch::empty(DEFAULT_K)
    }
}

/// `-0.0` and `0.0` are one value (pandas `nunique` semantics).
fn canonical(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

impl QuantileSketch {
    fn empty(k: u32) -> QuantileSketch {
        QuantileSketch {
            k,
            count: 0,
            missing: 0,
            min: f64::NAN,
            max: f64::NAN,
            mean: 0.0,
            m2: 0.0,
            rank_error: 0,
            distinct: Some(Vec::new()),
            levels: vec![Level::default()],
        }
    }

    /// An empty sketch with level capacity `k` (even, `8 <= k <= 2^20`).
    pub fn new(k: u32) -> Result<QuantileSketch> {
        if !(MIN_K..=MAX_K).contains(&k) || !k.is_multiple_of(2) {
            return Err(DriftError::InvalidArgument(format!(
                "sketch capacity k must be even and in [{MIN_K}, {MAX_K}], got {k}"
            )));
        }
        Ok(QuantileSketch::empty(k))
    }

    /// Sketch of a sorted, finite sample (may be empty), built in O(n): blocks of
    /// `2^h` consecutive values are represented by their largest value, so the
    /// rank error is below the block size, `< 2n/k`.
    pub fn from_sorted(values: &[f64], k: u32) -> Result<QuantileSketch> {
        let mut s = QuantileSketch::new(k)?;
        if values.is_empty() {
            return Ok(s);
        }
        check_sorted(values, Side::Reference)?;
        let n = values.len();
        s.count = n as u64;
        s.min = values[0];
        s.max = values[n - 1];
        s.mean = values.iter().sum::<f64>() / n as f64;
        s.m2 = values.iter().map(|v| (v - s.mean) * (v - s.mean)).sum();
        // Exact value counts while there are few distinct values.
        let mut table: Vec<(f64, u64)> = Vec::new();
        let mut ok = true;
        for &v in values {
            match table.last_mut() {
                Some((last, c)) if *last == v => *c += 1,
                _ => {
                    if table.len() == DISTINCT_CAP {
                        ok = false;
                        break;
                    }
                    table.push((canonical(v), 1));
                }
            }
        }
        s.distinct = ok.then_some(table);
        // Place blocks: the smallest level h with ceil(n / 2^h) <= k, recursively
        // for the remainder (the largest values).
        let cap = k as usize;
        let mut rest = values;
        let mut max_block = 1u64;
        while !rest.is_empty() {
            let len = rest.len();
            let mut h = 0usize;
            while len.div_ceil(1usize << h) > cap {
                h += 1;
            }
            if h == 0 {
                s.levels[0].items.extend_from_slice(rest);
                break;
            }
            let block = 1usize << h;
            let full = len / block;
            while s.levels.len() <= h {
                s.levels.push(Level::default());
            }
            s.levels[h]
                .items
                .extend((1..=full).map(|b| rest[b * block - 1]));
            max_block = max_block.max(block as u64);
            rest = &rest[full * block..];
        }
        s.rank_error = max_block - 1;
        Ok(s)
    }

    /// Adds one value; NaN and ±infinity count as missing (as Evidently drops them).
    pub fn insert(&mut self, x: f64) {
        if !x.is_finite() {
            self.missing += 1;
            return;
        }
        self.count += 1;
        if self.count == 1 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        if let Some(table) = &mut self.distinct {
            let key = canonical(x);
            match table.binary_search_by(|(v, _)| v.total_cmp(&key)) {
                Ok(i) => table[i].1 += 1,
                Err(i) => {
                    if table.len() == DISTINCT_CAP {
                        self.distinct = None;
                    } else {
                        table.insert(i, (key, 1));
                    }
                }
            }
        }
        self.levels[0].items.push(x);
        if self.levels[0].items.len() > self.k as usize {
            self.compact_from(0);
        }
    }

    /// Adds `n` missing values.
    pub fn insert_missing(&mut self, n: u64) {
        self.missing += n;
    }

    /// Adds a sorted batch (built with [`QuantileSketch::from_sorted`], then merged).
    pub fn insert_sorted(&mut self, values: &[f64]) -> Result<()> {
        let batch = QuantileSketch::from_sorted(values, self.k)?;
        self.merge(&batch)
    }

    /// Merges another sketch (same `k`) into this one: the result summarises the
    /// union and its certified rank error is the sum of both plus any compaction.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<()> {
        if other.k != self.k {
            return Err(DriftError::InvalidArgument(format!(
                "cannot merge sketches with k = {} and k = {}",
                self.k, other.k
            )));
        }
        self.missing += other.missing;
        if other.count == 0 {
            return Ok(());
        }
        if self.count == 0 {
            let missing = self.missing;
            *self = other.clone();
            self.missing = missing;
            return Ok(());
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.distinct = match (self.distinct.take(), &other.distinct) {
            (Some(a), Some(b)) => merge_tables(&a, b),
            _ => None,
        };
        self.rank_error += other.rank_error;
        while self.levels.len() < other.levels.len() {
            self.levels.push(Level::default());
        }
        for (mine, theirs) in self.levels.iter_mut().zip(&other.levels) {
            mine.items.extend_from_slice(&theirs.items);
            mine.compactions += theirs.compactions;
        }
        let mut h = 0;
        while h < self.levels.len() {
            if self.levels[h].items.len() > self.k as usize {
                self.compact_from(h);
            }
            h += 1;
        }
        Ok(())
    }

    /// Compacts level `h` (and upwards while levels overflow): sort, pair
    /// neighbours, keep one of each pair (alternating which) at level `h + 1`.
    /// Each compaction changes any rank by at most `2^h`, which is added to the
    /// certified error.
    fn compact_from(&mut self, mut h: usize) {
        let cap = self.k as usize;
        while h < self.levels.len() && self.levels[h].items.len() > cap {
            if h + 1 == self.levels.len() {
                self.levels.push(Level::default());
            }
            let (lower, upper) = self.levels.split_at_mut(h + 1);
            let level = &mut lower[h];
            level.items.sort_unstable_by(f64::total_cmp);
            let m = level.items.len();
            let parity = (level.compactions % 2) as usize;
            let next = &mut upper[0].items;
            next.extend((0..m / 2).map(|p| level.items[2 * p + parity]));
            let leftover = (m % 2 == 1).then(|| level.items[m - 1]);
            level.items.clear();
            level.items.extend(leftover);
            level.compactions += 1;
            self.rank_error += 1u64 << h;
            h += 1;
        }
    }

    /// Level capacity `k`.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Number of finite values summarised.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of missing (NaN / infinite) values seen.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// `missing / (count + missing)`, 0 for an empty sketch.
    pub fn missing_rate(&self) -> f64 {
        let total = self.count + self.missing;
        if total == 0 {
            0.0
        } else {
            self.missing as f64 / total as f64
        }
    }

    /// Exact minimum (NaN when empty).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Exact maximum (NaN when empty).
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.mean }
    }

    /// Population standard deviation (`ddof = 0`; NaN when empty).
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            (self.m2.max(0.0) / self.count as f64).sqrt()
        }
    }

    /// Certified absolute rank error `E`: for every `t`, the estimated number of
    /// values `<= t` (and `< t`) is within `E` of the true number.
    pub fn rank_error(&self) -> u64 {
        if self.distinct.is_some() {
            0
        } else {
            self.rank_error
        }
    }

    /// Certified normalised rank (CDF) error `E / n` (0 when empty or exact).
    pub fn epsilon(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.rank_error() as f64 / self.count as f64
        }
    }

    /// Exact `(value, count)` table while there are at most [`DISTINCT_CAP`]
    /// distinct values (ascending), `None` afterwards.
    pub fn distinct_values(&self) -> Option<&[(f64, u64)]> {
        self.distinct.as_deref()
    }

    /// Number of retained items (memory is about `8 *` this many bytes).
    pub fn retained(&self) -> usize {
        self.levels.iter().map(|l| l.items.len()).sum()
    }

    /// Sorted weighted view used by every query; exact when the distinct table is
    /// still available.
    pub fn cdf(&self) -> WeightedCdf {
        if let Some(table) = &self.distinct {
            return WeightedCdf::from_pairs(table.clone(), self.count);
        }
        let mut pairs: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, l)| l.items.iter().map(move |&v| (v, 1u64 << h)))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        WeightedCdf::from_pairs(pairs, self.count)
    }

    /// Estimated number of values `<= t`, within [`QuantileSketch::rank_error`].
    pub fn rank(&self, t: f64) -> u64 {
        self.cdf().rank(t)
    }

    /// Estimated `q`-quantile (`0 <= q <= 1`): a retained value whose true rank is
    /// within `rank_error` of `ceil(q·n)`; exact minimum / maximum at 0 and 1.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        self.cdf().quantile(q)
    }

    /// Serialises to a compact little-endian byte format (`SDQS`, version 1).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new(MAGIC, VERSION);
        w.u32(self.k);
        w.u64(self.count);
        w.u64(self.missing);
        w.f64(self.min);
        w.f64(self.max);
        w.f64(self.mean);
        w.f64(self.m2);
        w.u64(self.rank_error);
        match &self.distinct {
            None => w.u32(u32::MAX),
            Some(t) => {
                w.len_u32(t.len())?;
                for &(v, c) in t {
                    w.f64(v);
                    w.u64(c);
                }
            }
        }
        w.len_u32(self.levels.len())?;
        for l in &self.levels {
            w.u64(l.compactions);
            w.len_u32(l.items.len())?;
            for &v in &l.items {
                w.f64(v);
            }
        }
        Ok(w.buf)
    }

    /// Decodes [`QuantileSketch::to_bytes`], validating every invariant (weights
    /// add up to the count, values finite, capacity valid, ...).
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantileSketch> {
        let bad = |m: &str| DriftError::Decode(m.to_string());
        let mut r = Reader::new(bytes, MAGIC, VERSION)?;
        let k = r.u32()?;
        let mut s = QuantileSketch::new(k).map_err(|_| bad("invalid capacity k"))?;
        s.count = r.u64()?;
        s.missing = r.u64()?;
        s.min = r.f64()?;
        s.max = r.f64()?;
        s.mean = r.f64()?;
        s.m2 = r.f64()?;
        s.rank_error = r.u64()?;
        let table_len = r.u32()?;
        s.distinct = if table_len == u32::MAX {
            None
        } else {
            let n = table_len as usize;
            if n > DISTINCT_CAP {
                return Err(bad("distinct table too long"));
            }
            let mut t = Vec::with_capacity(n);
            for _ in 0..n {
                t.push((r.f64()?, r.u64()?));
            }
            if t.iter().any(|(v, c)| !v.is_finite() || *c == 0)
                || t.windows(2).any(|w| w[0].0 >= w[1].0)
                || t.iter().map(|p| p.1).sum::<u64>() != s.count
            {
                return Err(bad("inconsistent distinct table"));
            }
            Some(t)
        };
        let n_levels = r.len_u32(12)?;
        if n_levels == 0 || n_levels > 64 {
            return Err(bad("invalid number of levels"));
        }
        s.levels.clear();
        let mut weight: u128 = 0;
        for h in 0..n_levels {
            let compactions = r.u64()?;
            let n = r.len_u32(8)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.f64()?);
            }
            if items.iter().any(|v| !v.is_finite()) {
                return Err(bad("non-finite item"));
            }
            weight += (n as u128) << h;
            s.levels.push(Level { items, compactions });
        }
        r.finish()?;
        if weight != u128::from(s.count) {
            return Err(bad("item weights do not add up to the count"));
        }
        if s.count > 0 && (!s.min.is_finite() || !s.max.is_finite() || s.min > s.max) {
            return Err(bad("invalid min/max"));
        }
        Ok(s)
    }
}

fn merge_tables(a: &[(f64, u64)], b: &[(f64, u64)]) -> Option<Vec<(f64, u64)>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                *x
            }
            (Some(_), Some(y)) => {
                j += 1;
                *y
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (None, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => break,
        };
        out.push(next);
        if out.len() > DISTINCT_CAP {
            return None;
        }
    }
    Some(out)
}

/// A sorted, weighted step CDF: the query form of a sketch.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCdf {
    values: Vec<f64>,
    /// Cumulative weight up to and including `values[i]`.
    cum: Vec<u64>,
    total: u64,
}

impl WeightedCdf {
    fn from_pairs(pairs: Vec<(f64, u64)>, total: u64) -> WeightedCdf {
        let mut values = Vec::with_capacity(pairs.len());
        let mut cum: Vec<u64> = Vec::with_capacity(pairs.len());
        let mut acc = 0u64;
        for (v, w) in pairs {
            acc += w;
            if values.last() == Some(&v) {
                if let Some(c) = cum.last_mut() {
                    *c = acc;
                }
            } else {
                values.push(v);
                cum.push(acc);
            }
        }
        WeightedCdf { values, cum, total }
    }

    /// Distinct retained values, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Weight of `values[i]` alone.
    pub fn weight(&self, i: usize) -> u64 {
        self.cum[i] - if i == 0 { 0 } else { self.cum[i - 1] }
    }

    /// Total weight (number of values summarised).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Estimated number of values `<= t`.
    pub fn rank(&self, t: f64) -> u64 {
        let idx = self.values.partition_point(|&v| v <= t);
        if idx == 0 { 0 } else { self.cum[idx - 1] }
    }

    /// Estimated number of values `< t`.
    pub fn rank_below(&self, t: f64) -> u64 {
        let idx = self.values.partition_point(|&v| v < t);
        if idx == 0 { 0 } else { self.cum[idx - 1] }
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let target = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let idx = self.cum.partition_point(|&c| c < target);
        self.values
            .get(idx.min(self.values.len().saturating_sub(1)))
            .copied()
    }
}
