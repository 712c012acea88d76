//! Compiling the filter language's predicates (`steward_common::filter`) to parameterized SQL
//! expressions (sea-query; user input is always a bound value, never SQL text).

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use steward_common::filter::{CmpOp, Test, Value};

/// A filter literal as a bound SQL value.
pub fn value_expr(v: &Value) -> Expr {
    match v {
        Value::Str(s) => Expr::val(s.as_str()),
        Value::Num(n) => Expr::val(*n),
        Value::Int(i) => Expr::val(*i),
    }
}

/// `col` tested by `test` (comparison, LIKE/ILIKE, IN, IS NULL) as a parameterized expression.
pub fn apply_test(col: Expr, test: &Test) -> Expr {
    match test {
        Test::Cmp(op, v) => {
            let v = value_expr(v);
            match op {
                CmpOp::Eq => col.eq(v),
                CmpOp::Ne => col.ne(v),
                CmpOp::Lt => col.lt(v),
                CmpOp::Le => col.lte(v),
                CmpOp::Gt => col.gt(v),
                CmpOp::Ge => col.gte(v),
            }
        }
        Test::Like {
            pattern,
            ci,
            negated,
        } => {
            let (col, pat) = if *ci {
                (Expr::from(Func::lower(col)), pattern.to_lowercase())
            } else {
                (col, pattern.clone())
            };
            if *negated {
                col.not_like(pat)
            } else {
                col.like(pat)
            }
        }
        Test::In { values, negated } => {
            let vals: Vec<Expr> = values.iter().map(value_expr).collect();
            if *negated {
                col.is_not_in(vals)
            } else {
                col.is_in(vals)
            }
        }
        Test::IsNull { negated } => {
            if *negated {
                col.is_not_null()
            } else {
                col.is_null()
            }
        }
    }
}
