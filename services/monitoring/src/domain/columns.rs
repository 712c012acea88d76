//! Columns of feature values and their compact, compressed chunk encoding.
//!
//! A window's values are stored as chunks, one per ingest batch and window: the monitor's
//! features in spec order, then the prediction. Numbers are `f64` (NaN = missing), labels are
//! strings (`None` = missing). Encoding (then LZ4): `u8 format (1), u32 rows, u32 columns`, then
//! per column `u8 kind (0 number, 1 label), u64 type mismatches`, then `rows` little-endian
//! `f64`, or a dictionary (`u32 entries`, each `u32 length` + UTF-8 bytes) and `rows` `u32` codes
//! (`u32::MAX` = missing).

use std::collections::HashMap;

use steward_common::Error;

use super::FeatureKind;

/// One value of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// A label.
    Cat(String),
    /// Absent or null.
    Missing,
}

impl Value {
    /// A number as a label: integral values without a fraction ("1", not "1.0").
    pub fn number_label(x: f64) -> String {
        if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    }
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers (NaN = missing).
    Num(Vec<f64>),
    /// Labels (None = missing).
    Cat(Vec<Option<String>>),
}

impl Column {
    /// An empty column for a feature of `kind`.
    pub fn for_kind(kind: FeatureKind) -> Self {
        match kind {
            FeatureKind::Numeric => Self::Num(Vec::new()),
            FeatureKind::Categorical | FeatureKind::Binary => Self::Cat(Vec::new()),
        }
    }

    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Num(v) => v.len(),
            Self::Cat(v) => v.len(),
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `v`, converting where it can; returns false on a type mismatch (a label in a
    /// numeric column that does not parse as a number), which is stored as missing.
    pub fn push(&mut self, v: &Value) -> bool {
        match (self, v) {
            (Self::Num(c), Value::Num(x)) => {
                c.push(*x);
                true
            }
            (Self::Num(c), Value::Missing) => {
                c.push(f64::NAN);
                true
            }
            (Self::Num(c), Value::Cat(s)) => match s.trim().parse::<f64>() {
                Ok(x) => {
                    c.push(x);
                    true
                }
                Err(_) => {
                    c.push(f64::NAN);
                    false
                }
            },
            (Self::Cat(c), Value::Cat(s)) => {
                c.push(Some(s.clone()));
                true
            }
            (Self::Cat(c), Value::Num(x)) => {
                c.push(if x.is_nan() {
                    None
                } else {
                    Some(Value::number_label(*x))
                });
                true
            }
            (Self::Cat(c), Value::Missing) => {
                c.push(None);
                true
            }
        }
    }

    /// Appends every row of `other` (same kind).
    pub fn extend(&mut self, other: Column) -> Result<(), Error> {
        match (self, other) {
            (Self::Num(a), Self::Num(b)) => a.extend(b),
            (Self::Cat(a), Self::Cat(b)) => a.extend(b),
            _ => return Err(Error::internal("column kinds differ between chunks")),
        }
        Ok(())
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Column {
        match self {
            Self::Num(v) => Self::Num(idx.iter().map(|&i| v[i]).collect()),
            Self::Cat(v) => Self::Cat(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }

    /// Row `i` as a value.
    pub fn value(&self, i: usize) -> Value {
        match self {
            Self::Num(v) if !v[i].is_nan() => Value::Num(v[i]),
            Self::Cat(v) => v[i].clone().map_or(Value::Missing, Value::Cat),
            Self::Num(_) => Value::Missing,
        }
    }

    /// This column converted to a feature of `kind`, with a mask of the rows whose value did
    /// not fit (labels that are not numbers, for a numeric feature; stored as missing). The
    /// mask is empty when every value fit.
    pub fn into_kind(self, kind: FeatureKind) -> (Column, Vec<bool>) {
        match (kind, self) {
            (FeatureKind::Numeric, Self::Num(v)) => (Self::Num(v), Vec::new()),
            (FeatureKind::Numeric, Self::Cat(v)) => {
                let mut mask = vec![false; v.len()];
                let out = v
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| match s {
                        None => f64::NAN,
                        Some(s) => s.trim().parse::<f64>().unwrap_or_else(|_| {
                            mask[i] = true;
                            f64::NAN
                        }),
                    })
                    .collect();
                if !mask.contains(&true) {
                    mask.clear();
                }
                (Self::Num(out), mask)
            }
            (_, Self::Cat(v)) => (Self::Cat(v), Vec::new()),
            (_, Self::Num(v)) => (
                Self::Cat(
                    v.into_iter()
                        .map(|x| (!x.is_nan()).then(|| Value::number_label(x)))
                        .collect(),
                ),
                Vec::new(),
            ),
        }
    }

    /// Missing rows.
    pub fn missing(&self) -> usize {
        match self {
            Self::Num(v) => v.iter().filter(|x| x.is_nan()).count(),
            Self::Cat(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }
}

/// Columns of a batch of rows plus each column's type mismatches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    /// Rows.
    pub rows: usize,
    /// Columns, all `rows` long.
    pub columns: Vec<Column>,
    /// Per column: values that did not fit its type.
    pub mismatches: Vec<u64>,
}

impl Chunk {
    /// An empty chunk with columns of these kinds.
    pub fn with_kinds(kinds: &[FeatureKind]) -> Self {
        Self {
            rows: 0,
            columns: kinds.iter().map(|k| Column::for_kind(*k)).collect(),
            mismatches: vec![0; kinds.len()],
        }
    }

    /// Appends one row (one value per column).
    pub fn push_row<'a>(&mut self, values: impl IntoIterator<Item = &'a Value>) {
        for (i, v) in values.into_iter().enumerate() {
            if let Some(c) = self.columns.get_mut(i)
                && !c.push(v)
            {
                self.mismatches[i] += 1;
            }
        }
        self.rows += 1;
    }

    /// Appends `other` (same columns).
    pub fn append(&mut self, other: Chunk) -> Result<(), Error> {
        if other.columns.len() != self.columns.len() {
            return Err(Error::internal("chunks of one window differ in columns"));
        }
        for (i, c) in other.columns.into_iter().enumerate() {
            self.columns[i].extend(c)?;
            self.mismatches[i] += other.mismatches[i];
        }
        self.rows += other.rows;
        Ok(())
    }

    /// The compressed bytes (format version 1, see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.rows * self.columns.len() * 8);
        b.push(FORMAT);
        b.extend_from_slice(&(self.rows as u32).to_le_bytes());
        b.extend_from_slice(&(self.columns.len() as u32).to_le_bytes());
        for (c, m) in self.columns.iter().zip(&self.mismatches) {
            match c {
                Column::Num(v) => {
                    b.push(0);
                    b.extend_from_slice(&m.to_le_bytes());
                    for x in v {
                        b.extend_from_slice(&x.to_le_bytes());
                    }
                }
                Column::Cat(v) => {
                    b.push(1);
                    b.extend_from_slice(&m.to_le_bytes());
                    // Dictionary, then one code per row.
                    let mut dict: HashMap<&str, u32> = HashMap::new();
                    let mut order: Vec<&str> = Vec::new();
                    let codes: Vec<u32> = v
                        .iter()
                        .map(|s| match s {
                            Some(s) => *dict.entry(s.as_str()).or_insert_with(|| {
                                order.push(s.as_str());
                                (order.len() - 1) as u32
                            }),
                            None => u32::MAX,
                        })
                        .collect();
                    b.extend_from_slice(&(order.len() as u32).to_le_bytes());
                    for s in order {
                        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                        b.extend_from_slice(s.as_bytes());
                    }
                    for c in codes {
                        b.extend_from_slice(&c.to_le_bytes());
                    }
                }
            }
        }
        lz4_flex::compress_prepend_size(&b)
    }

    /// Decodes [`Chunk::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut chunk = Chunk::default();
        visit(bytes, |rows, col| {
            chunk.rows = rows;
            match col {
                Raw::Num { values, mismatches } => {
                    chunk.mismatches.push(mismatches);
                    chunk.columns.push(Column::Num(values.collect()));
                }
                Raw::Cat {
                    dict,
                    codes,
                    mismatches,
                } => {
                    chunk.mismatches.push(mismatches);
                    chunk.columns.push(Column::Cat(
                        codes
                            .map(|c| dict.get(c as usize).map(|s| s.to_string()))
                            .collect(),
                    ));
                }
            }
        })?;
        Ok(chunk)
    }
}

/// Version of the chunk encoding.
const FORMAT: u8 = 1;

/// One column of a chunk as stored, borrowed from the decompressed bytes.
pub enum Raw<'a, N: Iterator<Item = f64>, C: Iterator<Item = u32>> {
    /// Numbers (NaN = missing).
    Num {
        /// The values.
        values: N,
        /// Type mismatches.
        mismatches: u64,
    },
    /// Labels: a dictionary and a code per row (u32::MAX = missing).
    Cat {
        /// The distinct labels.
        dict: Vec<&'a str>,
        /// A code per row.
        codes: C,
        /// Type mismatches.
        mismatches: u64,
    },
}

/// Decompresses `bytes` and calls `f(rows, column)` for every column, in order, without
/// copying labels.
pub fn visit<F>(bytes: &[u8], mut f: F) -> Result<(), Error>
where
    F: FnMut(
        usize,
        Raw<
            '_,
            std::iter::Map<std::slice::ChunksExact<'_, u8>, fn(&[u8]) -> f64>,
            std::iter::Map<std::slice::ChunksExact<'_, u8>, fn(&[u8]) -> u32>,
        >,
    ),
{
    let corrupt = || Error::internal("corrupt monitor chunk");
    let raw = lz4_flex::decompress_size_prepended(bytes).map_err(|_| corrupt())?;
    let mut r = Reader { b: &raw, at: 0 };
    if r.take(1).ok_or_else(corrupt)?[0] != FORMAT {
        return Err(corrupt());
    }
    let rows = r.u32().ok_or_else(corrupt)? as usize;
    let ncols = r.u32().ok_or_else(corrupt)? as usize;
    fn f64_of(c: &[u8]) -> f64 {
        f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
    }
    fn u32_of(c: &[u8]) -> u32 {
        u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))
    }
    for _ in 0..ncols {
        let kind = r.take(1).ok_or_else(corrupt)?[0];
        let mismatches = r.u64().ok_or_else(corrupt)?;
        match kind {
            0 => {
                let bytes = r
                    .take(rows.checked_mul(8).ok_or_else(corrupt)?)
                    .ok_or_else(corrupt)?;
                f(
                    rows,
                    Raw::Num {
                        values: bytes.chunks_exact(8).map(f64_of as fn(&[u8]) -> f64),
                        mismatches,
                    },
                );
            }
            1 => {
                let n = r.u32().ok_or_else(corrupt)? as usize;
                let mut dict = Vec::with_capacity(n.min(rows));
                for _ in 0..n {
                    let len = r.u32().ok_or_else(corrupt)? as usize;
                    let s = r.take(len).ok_or_else(corrupt)?;
                    dict.push(std::str::from_utf8(s).map_err(|_| corrupt())?);
                }
                let bytes = r
                    .take(rows.checked_mul(4).ok_or_else(corrupt)?)
                    .ok_or_else(corrupt)?;
                f(
                    rows,
                    Raw::Cat {
                        dict,
                        codes: bytes.chunks_exact(4).map(u32_of as fn(&[u8]) -> u32),
                        mismatches,
                    },
                );
            }
            _ => return Err(corrupt()),
        }
    }
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunks_round_trip(
            nums in proptest::collection::vec(proptest::option::of(-1e9f64..1e9), 0..50),
            labels in proptest::collection::vec(proptest::option::of("[a-zé]{0,6}"), 0..50),
        ) {
            let n = nums.len().min(labels.len());
            let mut c = Chunk::with_kinds(&[FeatureKind::Numeric, FeatureKind::Categorical]);
            for i in 0..n {
                let a = nums[i].map_or(Value::Missing, Value::Num);
                let b = labels[i].clone().map_or(Value::Missing, Value::Cat);
                c.push_row([&a, &b]);
            }
            let back = Chunk::decode(&c.encode()).unwrap();
            prop_assert_eq!(back.rows, n);
            // NaN != NaN: compare the missing masks and the present values.
            prop_assert_eq!(back.columns[1].clone(), c.columns[1].clone());
            prop_assert_eq!(back.columns[0].missing(), c.columns[0].missing());
        }
    }

    #[test]
    fn mismatches_are_counted_and_stored_as_missing() {
        let mut c = Chunk::with_kinds(&[FeatureKind::Numeric]);
        c.push_row([&Value::Cat("abc".into())]);
        c.push_row([&Value::Cat(" 2.5 ".into())]);
        assert_eq!(c.mismatches, vec![1]);
        assert_eq!(c.columns[0].missing(), 1);
        let back = Chunk::decode(&c.encode()).unwrap();
        assert_eq!(back.mismatches, vec![1]);
        assert!(Chunk::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn numbers_become_labels_without_a_fraction() {
        let mut c = Column::for_kind(FeatureKind::Binary);
        c.push(&Value::Num(1.0));
        c.push(&Value::Num(0.5));
        assert_eq!(c, Column::Cat(vec![Some("1".into()), Some("0.5".into())]));
    }
}
