//! Small helpers every store uses: typed column reads, single-row fetches and keyset
//! pagination conditions.

use sea_orm::sea_query::{Expr, ExprTrait, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult, TryGetable};
use serde::{Deserialize, Serialize};
use steward_common::Error;

use crate::db_err;

/// Reads column `col` of a row.
pub fn get<T: TryGetable>(r: &QueryResult, col: &str) -> Result<T, Error> {
    r.try_get("", col).map_err(db_err)
}

/// JSON text of a value, for a JSON column.
pub fn to_json<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// A value from a JSON column; `what` names the column in the error.
pub fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(|_| Error::internal(format!("corrupt {what}")))
}

/// Runs a single-row select and converts the row, if any.
pub async fn fetch_one<C: ConnectionTrait, T>(
    c: &C,
    q: &SelectStatement,
    from_row: fn(&QueryResult) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    c.query_one(q)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Runs a select and converts every row.
pub async fn fetch_all<C: ConnectionTrait, T>(
    c: &C,
    q: &SelectStatement,
    from_row: fn(&QueryResult) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    c.query_all(q)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect()
}

/// A sort value remembered in a keyset cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortVal {
    /// Integer (times, numbers, status codes).
    Int(i64),
    /// Float (metrics); NaN and infinities too (kept as text in JSON, which has no number
    /// for them).
    Num(#[serde(with = "any_f64")] f64),
    /// Text.
    Str(String),
}

impl SortVal {
    /// As a bound SQL value.
    pub fn expr(&self) -> Expr {
        match self {
            SortVal::Int(v) => Expr::val(*v),
            SortVal::Num(v) => Expr::val(*v),
            SortVal::Str(s) => Expr::val(s.as_str()),
        }
    }
}

/// Rows strictly after `(sort, tie)` in `(sort_col, tie_col)` order (descending when `desc`):
/// the keyset condition of the next page.
pub fn after(sort_col: Expr, tie_col: Expr, sort: &SortVal, tie: Expr, desc: bool) -> Expr {
    let v = sort.expr();
    if desc {
        sort_col
            .clone()
            .lt(v.clone())
            .or(sort_col.eq(v).and(tie_col.lt(tie)))
    } else {
        sort_col
            .clone()
            .gt(v.clone())
            .or(sort_col.eq(v).and(tie_col.gt(tie)))
    }
}

/// Splits `items` into chunks whose lengths are powers of two no larger than `max` (itself a
/// power of two): the binary decomposition of the length. A multi-row statement's SQL text
/// depends on its row count, so this keeps the number of distinct statements (and prepared
/// statements in the driver's cache) to `log2(max) + 1` whatever the batch sizes.
pub fn pow2_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= max {
            max
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::pow2_chunks;

    #[test]
    fn chunks_are_powers_of_two_and_cover_everything_in_order() {
        for n in 0..600usize {
            let v: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = pow2_chunks(&v, 256).collect();
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len().is_power_of_two() && c.len() <= 256)
            );
            assert_eq!(chunks.concat(), v);
        }
    }
}

/// Serde for any `f64`: finite values as JSON numbers, NaN and the infinities as the strings
/// `"NaN"`, `"inf"` and `"-inf"` (plain serde_json writes them as `null`, which does not read
/// back).
mod any_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(
                    "expected a number, NaN, inf or -inf",
                )),
            },
        }
    }
}

#[cfg(test)]
mod sort_val_tests {
    use super::SortVal;

    #[test]
    fn every_float_round_trips_through_json() {
        for v in [0.0, -1.5, f64::MAX, f64::INFINITY, f64::NEG_INFINITY] {
            let j = serde_json::to_string(&SortVal::Num(v)).unwrap();
            assert_eq!(
                serde_json::from_str::<SortVal>(&j).unwrap(),
                SortVal::Num(v),
                "{j}"
            );
        }
        let j = serde_json::to_string(&SortVal::Num(f64::NAN)).unwrap();
        match serde_json::from_str::<SortVal>(&j).unwrap() {
            SortVal::Num(v) => assert!(v.is_nan()),
            other => panic!("{other:?}"),
        }
    }
}
