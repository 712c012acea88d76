//! Bounded frequent-value counting (Misra-Gries) and distinct counting
//! (exact, then HyperLogLog).
//!
//! # Frequent values
//! [`Frequent`] is a Misra-Gries summary with capacity `k` and batched
//! reductions: counters are exact until the table holds `2k` distinct keys; then
//! the `(k+1)`-th largest counter `c` is subtracted from every counter and the
//! counters that drop to zero are removed (at most `k` survive). Each reduction
//! removes at least `(k+1)·c` from the total weight, so the sum `Δ` of all
//! subtracted amounts ([`Frequent::reduced`]) is at most `(N - N̂)/(k+1) <= N/(k+1)`
//! (`N` values inserted, `N̂` the weight left in the table). For every value `v`
//! with true count `f(v)`, the kept counter `f̂(v)` (0 if absent) satisfies
//! `f(v) - Δ <= f̂(v) <= f(v)`: reported counts are lower bounds, exact while `Δ = 0`.
//! The bound holds when `k` grows during the stream ([`Frequent::grow`]) with
//! the smallest `k` used. Amortised cost per insert is O(1); memory is at most
//! `2k + 1` keys.
//!
//! # Distinct values
//! While no reduction has happened the table holds every distinct key, so the
//! distinct count is exact (up to `2k` values). At the first reduction every key
//! in the table is added to a HyperLogLog sketch (precision 14: 16 KiB, standard
//! error `1.04 / sqrt(2^14)` ≈ 0.81 %), which then sees every later value; the
//! estimate uses Ertl's improved estimator ("New cardinality estimation
//! algorithms for HyperLogLog sketches", 2017), unbiased over the whole range.

use std::hash::BuildHasher;

/// Keys up to this many bytes are stored inline (no allocation).
const INLINE: usize = 22;

/// A counted key: short keys inline, long ones boxed.
#[derive(Clone)]
enum Key {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Key {
    fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            // INLINE < 256, so the length fits.
            Key::Inline(bytes.len() as u8, buf)
        } else {
            Key::Heap(bytes.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(len, buf) => &buf[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

/// One table slot; `hash == 0` marks an empty slot (a zero hash is stored as 1).
#[derive(Clone)]
struct Slot {
    hash: u64,
    count: u64,
    key: Key,
}

const EMPTY: Slot = Slot {
    hash: 0,
    count: 0,
    key: Key::Inline(0, [0; INLINE]),
};

/// Process-wide random hash seed: keys chosen by an adversary cannot force
/// collisions (the tables use linear probing), and one hash per value serves
/// both the table and the HyperLogLog. Distinct *estimates* may therefore
/// differ slightly from one process to the next (exact counts never do).
fn hasher() -> foldhash::fast::FixedState {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED
        .get_or_init(|| foldhash::fast::RandomState::default().hash_one(0x5465_6162_756c_6172u64));
    foldhash::fast::FixedState::with_seed(seed)
}

/// MurmurHash3's 64-bit finaliser: every output bit depends on every input
/// bit, as the HyperLogLog (top bits, leading zeros) and the table (low bits) need.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Misra-Gries frequent values plus a distinct counter (see the module docs),
/// in an open-addressing table (linear probing, load at most 1/2) that grows
/// with the number of keys up to `4k + 2` slots.
pub(crate) struct Frequent {
    capacity: usize,
    slots: Vec<Slot>,
    /// Indices of the occupied slots.
    occupied: Vec<u32>,
    reduced: u64,
    hll: Option<Box<Hll>>,
    hasher: foldhash::fast::FixedState,
}

impl Frequent {
    /// An empty summary keeping at least `capacity` (>= 1) counters.
    pub(crate) fn new(capacity: usize) -> Frequent {
        Frequent {
            capacity: capacity.max(1),
            slots: Vec::new(),
            occupied: Vec::new(),
            reduced: 0,
            hll: None,
            hasher: hasher(),
        }
    }

    /// Raises the capacity (never lowers it). The bound on [`Frequent::reduced`]
    /// stays `N / (k+1)` with the smallest `k` used.
    pub(crate) fn grow(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Counts one occurrence of `key`.
    #[inline]
    pub(crate) fn insert(&mut self, key: &[u8]) {
        let hash = match mix(self.hasher.hash_one(key)) {
            0 => 1,
            h => h,
        };
        if self.slots.is_empty() {
            self.slots = vec![EMPTY; 16];
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.hash == hash && slot.key.as_bytes() == key {
                slot.count += 1;
                return;
            }
            if slot.hash == 0 {
                break;
            }
            i = (i + 1) & mask;
        }
        // A new key (every key in the table is already in the HyperLogLog).
        if let Some(hll) = &mut self.hll {
            hll.add_hash(hash);
        }
        self.slots[i] = Slot {
            hash,
            count: 1,
            key: Key::new(key),
        };
        // The table holds at most 2^32 slots (it is capped near 4k + 2).
        self.occupied.push(i as u32);
        if self.occupied.len() > 2 * self.capacity {
            self.reduce();
        } else if 2 * self.occupied.len() > self.slots.len() {
            self.rehash(self.slots.len() * 2);
        }
    }

    /// Moves every key into a table of `size` slots.
    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        let kept: Vec<Slot> = self
            .occupied
            .iter()
            .map(|&i| old[i as usize].clone())
            .collect();
        self.occupied.clear();
        self.place(kept);
    }

    fn place(&mut self, kept: Vec<Slot>) {
        let mask = self.slots.len() - 1;
        for s in kept {
            let mut i = s.hash as usize & mask;
            while self.slots[i].hash != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
            self.occupied.push(i as u32);
        }
    }

    fn reduce(&mut self) {
        if self.hll.is_none() {
            let mut hll = Box::new(Hll::new());
            for &i in &self.occupied {
                hll.add_hash(self.slots[i as usize].hash);
            }
            self.hll = Some(hll);
        }
        let mut values: Vec<u64> = self
            .occupied
            .iter()
            .map(|&i| self.slots[i as usize].count)
            .collect();
        let idx = values.len() - self.capacity - 1;
        let pivot = *values.select_nth_unstable(idx).1;
        let mut kept = Vec::with_capacity(self.capacity);
        for &i in &self.occupied {
            let mut s = std::mem::replace(&mut self.slots[i as usize], EMPTY);
            if s.count > pivot {
                s.count -= pivot;
                kept.push(s);
            }
        }
        self.occupied.clear();
        self.reduced += pivot;
        self.place(kept);
    }

    /// Total amount subtracted from every counter (`Δ`): each kept count is at
    /// most this much below the true count; 0 means every count is exact.
    pub(crate) fn reduced(&self) -> u64 {
        self.reduced
    }

    /// Number of distinct keys and whether it is exact (else a HyperLogLog estimate).
    pub(crate) fn distinct(&self) -> (u64, bool) {
        match &self.hll {
            None => (self.occupied.len() as u64, true),
            Some(hll) => (hll.estimate().round() as u64, false),
        }
    }

    /// Every kept `(key, count)`, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.occupied.iter().map(|&i| {
            let s = &self.slots[i as usize];
            (s.key.as_bytes(), s.count)
        })
    }

    /// The `n` largest kept counts, by count descending then key ascending.
    pub(crate) fn top(&self, n: usize) -> Vec<(&[u8], u64)> {
        let mut all: Vec<(&[u8], u64)> = self.entries().collect();
        let by_rank = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by(n - 1, by_rank);
        }
        all.truncate(n);
        all.sort_unstable_by(by_rank);
        all
    }
}

/// HyperLogLog precision (number of index bits).
const P: u32 = 14;
/// Remaining hash bits.
const Q: u32 = 64 - P;
const M: usize = 1 << P;

/// HyperLogLog with `2^14` one-byte registers and Ertl's improved estimator.
pub(crate) struct Hll {
    registers: Vec<u8>,
}

impl Hll {
    pub(crate) fn new() -> Hll {
        Hll {
            registers: vec![0; M],
        }
    }

    /// Adds a value by its 64-bit hash.
    #[inline]
    pub(crate) fn add_hash(&mut self, h: u64) {
        let idx = (h >> Q) as usize;
        // The sentinel bit caps the rank at Q + 1.
        let w = (h << P) | (1 << (P - 1));
        let rank = (w.leading_zeros() + 1) as u8;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    pub(crate) fn estimate(&self) -> f64 {
        let m = M as f64;
        let mut hist = [0u32; Q as usize + 2];
        for &r in &self.registers {
            hist[usize::from(r)] += 1;
        }
        let mut z = m * tau(1.0 - f64::from(hist[Q as usize + 1]) / m);
        for k in (1..=Q as usize).rev() {
            z = 0.5 * (z + f64::from(hist[k]));
        }
        z += m * sigma(f64::from(hist[0]) / m);
        m * m / (2.0 * std::f64::consts::LN_2 * z)
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn exact_while_small() {
        let mut f = Frequent::new(100);
        for i in 0..150u32 {
            for _ in 0..=i % 3 {
                f.insert(i.to_string().as_bytes());
            }
        }
        assert_eq!(f.reduced(), 0);
        assert_eq!(f.distinct(), (150, true));
        let top = f.top(2);
        assert_eq!(top, vec![(&b"101"[..], 3), (&b"104"[..], 3)]);
    }

    #[test]
    fn misra_gries_bound_holds() {
        // Heavy hitters hidden in a stream of unique values.
        let cap = 50;
        let mut f = Frequent::new(cap);
        let mut n = 0u64;
        for i in 0..100_000u64 {
            let key = if i % 10 == 0 {
                format!("heavy{}", i % 30)
            } else {
                format!("u{i}")
            };
            f.insert(key.as_bytes());
            n += 1;
        }
        let delta = f.reduced();
        assert!(delta > 0);
        assert!(delta <= n / (cap as u64 + 1), "delta {delta}");
        let counts: HashMap<&[u8], u64> = f.entries().collect();
        for h in 0..3 {
            let key = format!("heavy{}", h * 10);
            let truth = 10_000 / 3 + u64::from(h == 0);
            let est = counts.get(key.as_bytes()).copied().unwrap_or(0);
            assert!(
                est <= truth && truth <= est + delta,
                "{key}: {est} vs {truth}"
            );
        }
        assert!(f.occupied.len() <= 2 * cap);
    }

    #[test]
    fn hll_estimate_is_close() {
        for n in [1u64, 10, 1_000, 20_000, 200_000] {
            let mut h = Hll::new();
            let hasher = hasher();
            for i in 0..n {
                h.add_hash(mix(hasher.hash_one(i)));
            }
            let est = h.estimate();
            let rel = (est - n as f64).abs() / n as f64;
            assert!(rel < 0.04, "n = {n}: estimate {est}");
        }
        assert_eq!(Hll::new().estimate(), 0.0);
    }

    #[test]
    fn distinct_switches_to_estimate() {
        let mut f = Frequent::new(64);
        for i in 0..50_000u64 {
            f.insert(i.to_string().as_bytes());
        }
        let (d, exact) = f.distinct();
        assert!(!exact);
        assert!((d as f64 - 50_000.0).abs() < 2_000.0, "{d}");
    }
}
