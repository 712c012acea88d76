//! Compiles filters in the models and versions scopes to SQL conditions.

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query};
use steward_common::Error;
use steward_common::filter::{Attr, DatasetField, Field, Filter, Test, VersionField};
use steward_storage::filter_sql::apply_test;
use steward_storage::schema::{
    ModelVersionDatasets as D, ModelVersionTags as VT, ModelVersions as V,
    RegisteredModelTags as MT, RegisteredModels as M,
};

fn dataset_col(f: DatasetField) -> D {
    match f {
        DatasetField::Name => D::Name,
        DatasetField::Digest => D::Digest,
        DatasetField::Context => D::Context,
        DatasetField::SourceUri => D::SourceUri,
    }
}

/// The `model_versions` column of a version field.
pub fn version_col(f: VersionField) -> V {
    match f {
        VersionField::Number => V::Version,
        VersionField::Status => V::Status,
        VersionField::Format => V::Format,
        VersionField::Approval => V::ApprovalState,
        VersionField::Creator => V::Creator,
        VersionField::SourceRun => V::SourceRun,
        VersionField::Digest => V::ContentDigest,
        VersionField::CreateTime => V::CreateTime,
        VersionField::UpdateTime => V::UpdateTime,
    }
}

fn unsupported(what: &str) -> Error {
    Error::invalid_field("filter", format!("field not supported for {what}"))
}

fn fold(
    parts: &[Filter],
    mut c: Condition,
    go: &mut dyn FnMut(&Filter) -> Result<Condition, Error>,
) -> Result<Condition, Error> {
    for p in parts {
        c = c.add(go(p)?);
    }
    Ok(c)
}

/// EXISTS(sub) or NOT EXISTS(sub) for presence tests; EXISTS(sub AND test) otherwise.
fn exists_with(mut sub: sea_orm::sea_query::SelectStatement, col: Expr, test: &Test) -> Condition {
    match test {
        Test::IsNull { negated: false } => Condition::all().add(Expr::exists(sub).not()),
        Test::IsNull { negated: true } => Condition::all().add(Expr::exists(sub)),
        t => {
            sub.and_where(apply_test(col, t));
            Condition::all().add(Expr::exists(sub))
        }
    }
}

/// Condition over registered models (alias `m`).
pub fn model_condition(f: &Filter, m: &Alias, n: &mut usize) -> Result<Condition, Error> {
    Ok(match f {
        Filter::And(p) => fold(p, Condition::all(), &mut |x| model_condition(x, m, n))?,
        Filter::Or(p) => fold(p, Condition::any(), &mut |x| model_condition(x, m, n))?,
        Filter::Not(i) => model_condition(i, m, n)?.not(),
        Filter::Pred(Field::Attr(a), test) => {
            let col = match a {
                Attr::Name => M::Name,
                Attr::Description => M::Description,
                Attr::Creator => M::Creator,
                Attr::CreateTime => M::CreateTime,
                Attr::UpdateTime => M::UpdateTime,
                _ => return Err(unsupported("registered models")),
            };
            Condition::all().add(apply_test(Expr::col((m.clone(), col)), test))
        }
        Filter::Pred(Field::Tag(k), test) => {
            *n += 1;
            let t = Alias::new(format!("t{n}"));
            let mut sub = Query::select();
            sub.expr(Expr::val(1))
                .from_as(MT::Table, t.clone())
                .and_where(Expr::col((t.clone(), MT::Model)).equals((m.clone(), M::Name)))
                .and_where(Expr::col((t.clone(), MT::Key)).eq(k.as_str()));
            exists_with(sub, Expr::col((t, MT::Value)), test)
        }
        Filter::Pred(Field::Version(vf), test) => {
            *n += 1;
            let v = Alias::new(format!("lv{n}"));
            let mut sub = Query::select();
            sub.expr(Expr::val(1))
                .from_as(V::Table, v.clone())
                .and_where(Expr::col((v.clone(), V::Model)).equals((m.clone(), M::Name)))
                .and_where(Expr::col((v.clone(), V::Version)).equals((m.clone(), M::LastVersion)));
            exists_with(sub, Expr::col((v, version_col(*vf))), test)
        }
        Filter::Pred(Field::Dataset(df), test) => {
            // Some version of the model was trained on a matching dataset.
            *n += 1;
            let d = Alias::new(format!("d{n}"));
            let mut sub = Query::select();
            sub.expr(Expr::val(1))
                .from_as(D::Table, d.clone())
                .and_where(Expr::col((d.clone(), D::Model)).equals((m.clone(), M::Name)));
            exists_with(sub, Expr::col((d, dataset_col(*df))), test)
        }
        Filter::Pred(..) => return Err(unsupported("registered models")),
    })
}

/// Condition over model versions (alias `v`).
pub fn version_condition(f: &Filter, v: &Alias, n: &mut usize) -> Result<Condition, Error> {
    Ok(match f {
        Filter::And(p) => fold(p, Condition::all(), &mut |x| version_condition(x, v, n))?,
        Filter::Or(p) => fold(p, Condition::any(), &mut |x| version_condition(x, v, n))?,
        Filter::Not(i) => version_condition(i, v, n)?.not(),
        Filter::Pred(Field::Version(vf), test) => {
            Condition::all().add(apply_test(Expr::col((v.clone(), version_col(*vf))), test))
        }
        Filter::Pred(Field::Tag(k), test) => {
            *n += 1;
            let t = Alias::new(format!("t{n}"));
            let mut sub = Query::select();
            sub.expr(Expr::val(1))
                .from_as(VT::Table, t.clone())
                .and_where(Expr::col((t.clone(), VT::Model)).equals((v.clone(), V::Model)))
                .and_where(Expr::col((t.clone(), VT::Version)).equals((v.clone(), V::Version)))
                .and_where(Expr::col((t.clone(), VT::Key)).eq(k.as_str()));
            exists_with(sub, Expr::col((t, VT::Value)), test)
        }
        Filter::Pred(Field::Dataset(df), test) => {
            *n += 1;
            let d = Alias::new(format!("d{n}"));
            let mut sub = Query::select();
            sub.expr(Expr::val(1))
                .from_as(D::Table, d.clone())
                .and_where(Expr::col((d.clone(), D::Model)).equals((v.clone(), V::Model)))
                .and_where(Expr::col((d.clone(), D::Version)).equals((v.clone(), V::Version)));
            exists_with(sub, Expr::col((d, dataset_col(*df))), test)
        }
        Filter::Pred(..) => return Err(unsupported("model versions")),
    })
}
