//! `steward versions lineage` and `steward versions compare`.

use steward_proto::registry as pb;

use super::output::{table, time};
use super::registry_json as js;
use super::{RegistryClient, names, status_err};
use crate::cli::ClientArgs;

/// A metric value: 4 decimals for ordinary magnitudes, else as is.
fn num(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e6 {
        format!("{v:.4}")
    } else {
        format!("{v}")
    }
}

/// A signed difference.
fn delta(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e6 {
        format!("{v:+.4}")
    } else {
        format!("{v:+}")
    }
}

/// One side of a diff: its value, or `(none)` when that side lacks the key.
fn side(present: bool, value: String) -> String {
    if present { value } else { "(none)".into() }
}

/// Prints the lineage of one version.
pub async fn lineage(
    client: &mut RegistryClient,
    c: &ClientArgs,
    version: &str,
) -> anyhow::Result<()> {
    let l = client
        .get_lineage(pb::GetLineageRequest {
            name: names::version_name(version)?,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        js::print(&js::lineage(&l));
        return Ok(());
    }
    let mut t = table(&["FIELD", "VALUE"]);
    let mut row = |k: String, v: String| {
        t.add_row(vec![k, v]);
    };
    row("model version".into(), l.model_version.clone());
    row(
        "source run".into(),
        if l.source_run.is_empty() {
            "(external source)".into()
        } else {
            l.source_run.clone()
        },
    );
    if !l.run_name.is_empty() {
        row("run name".into(), l.run_name.clone());
    }
    row("creator".into(), l.creator.clone());
    row("created".into(), time(&l.create_time));
    row("content digest".into(), l.content_digest.clone());
    row("artifact uri".into(), l.artifact_uri.clone());
    if let Some(cv) = &l.code_version {
        row("git commit".into(), cv.git_commit.clone());
        row("git repo".into(), cv.git_repo.clone());
        row("git dirty".into(), cv.git_dirty.to_string());
    }
    for (i, p) in l.parent_runs.iter().enumerate() {
        row(format!("parent run {}", i + 1), p.clone());
    }
    let mut params: Vec<_> = l.params.iter().collect();
    params.sort();
    for (k, v) in params {
        row(format!("param {k}"), v.clone());
    }
    let mut metrics: Vec<_> = l.metrics.iter().collect();
    metrics.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in metrics {
        row(format!("metric {k}"), num(*v));
    }
    for d in &l.datasets {
        let src = if d.source_uri.is_empty() {
            String::new()
        } else {
            format!(" from {}", d.source_uri)
        };
        row(
            format!("dataset ({})", d.context),
            format!("{} {}{src}", d.name, d.digest),
        );
    }
    let mut tags: Vec<_> = l.run_tags.iter().collect();
    tags.sort();
    for (k, v) in tags {
        row(format!("run tag {k}"), v.clone());
    }
    for d in &l.deployments {
        row("deployment".into(), d.clone());
    }
    println!("{t}");
    Ok(())
}

/// Prints one section of value differences (or that there are none).
fn value_section(title: &str, diffs: &[pb::ValueDiff]) {
    if diffs.is_empty() {
        println!("{title}: no differences");
        return;
    }
    println!("{title} ({} differ)", diffs.len());
    let mut t = table(&["KEY", "BASE", "OTHER"]);
    for d in diffs {
        t.add_row(vec![
            d.key.clone(),
            side(d.in_base, d.base.clone()),
            side(d.in_other, d.other.clone()),
        ]);
    }
    println!("{t}");
}

/// Prints the differences between two versions.
pub async fn compare(
    client: &mut RegistryClient,
    c: &ClientArgs,
    base: &str,
    other: &str,
) -> anyhow::Result<()> {
    let cmp = client
        .compare_model_versions(pb::CompareModelVersionsRequest {
            base: names::version_name(base)?,
            other: names::version_name(other)?,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        js::print(&js::comparison(&cmp));
        return Ok(());
    }
    let label = |v: &Option<pb::ModelVersion>, asked: &str| match v {
        Some(v) if !v.source_run.is_empty() => format!("{} (run {})", v.name, v.source_run),
        Some(v) => format!("{} ({})", v.name, v.source_uri),
        None => asked.to_string(),
    };
    println!("base:  {}", label(&cmp.base, base));
    println!("other: {}", label(&cmp.other, other));
    println!();
    value_section("params", &cmp.params);
    if cmp.metrics.is_empty() {
        println!("metrics: none on either side");
    } else {
        println!("metrics");
        let mut t = table(&["KEY", "BASE", "OTHER", "DELTA"]);
        for m in &cmp.metrics {
            t.add_row(vec![
                m.key.clone(),
                side(m.in_base, num(m.base)),
                side(m.in_other, num(m.other)),
                if m.in_base && m.in_other {
                    delta(m.delta)
                } else {
                    "-".into()
                },
            ]);
        }
        println!("{t}");
    }
    value_section("datasets", &cmp.datasets);
    value_section("signature", &cmp.signature);
    value_section("code version", &cmp.code_version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_deltas() {
        assert_eq!(num(0.91), "0.9100");
        assert_eq!(delta(0.85 - 0.91), "-0.0600");
        assert_eq!(delta(0.5), "+0.5000");
        assert_eq!(num(1e9), "1000000000");
        assert_eq!(side(false, "x".into()), "(none)");
    }
}
