//! `steward explain REQUEST_ID`: which model made a decision, when it was trained, on what
//! data, who approved it, and which revision (applied by whom, with which split) routed it.

use anyhow::Result;
use steward_proto::deployment as pb;

use super::deployment_json as js;
use super::deployments::split_text;
use super::output::{table, time};
use super::registry_json::print;
use super::{deployment_client, status_err};
use crate::cli::{ClientArgs, ExplainArgs};

/// Every part of an explanation as FIELD/VALUE rows (empty values left out).
pub fn rows(x: &pb::DecisionExplanation) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            out.push((k.to_string(), v));
        }
    };
    let d = x.decision.clone().unwrap_or_default();
    row("request id", d.request_id.clone());
    row("time", time(&d.time));
    row("deployment", d.deployment.clone());
    row(
        "decision",
        format!(
            "{} variant {:?} (revision {}){}",
            d.kind,
            d.variant,
            d.revision,
            if d.routing_key.is_empty() {
                String::new()
            } else {
                format!(", routing key {:?}", d.routing_key)
            }
        ),
    );
    if d.error.is_empty() {
        row("outcome", format!("ok in {} µs", d.latency_us));
    } else {
        row(
            "outcome",
            format!("failed in {} µs: {}", d.latency_us, d.error),
        );
    }
    row("input digest", d.input_digest.clone());
    if d.inputs_erased {
        row("inputs", "erased".into());
    }
    row("model version", x.model_version.clone());
    let approval = match (x.approval_state.as_str(), x.approved_by.as_str()) {
        ("", _) => String::new(),
        (s, "") => s.to_string(),
        (s, by) => format!("{s} by {by} at {}", time(&x.approve_time)),
    };
    row("approval", approval);
    row("trained by run", x.source_run.clone());
    if x.trained_time.is_some() {
        row("trained", time(&x.trained_time));
    }
    for ds in &x.datasets {
        let context = if ds.context.is_empty() {
            String::new()
        } else {
            format!(" ({})", ds.context)
        };
        row("dataset", format!("{} {}{context}", ds.name, ds.digest));
    }
    row("git commit", x.git_commit.clone());
    row("git repo", x.git_repo.clone());
    if let Some(r) = &x.revision {
        row(
            "revision",
            format!(
                "{} applied by {} at {}{}",
                r.number,
                r.creator,
                time(&r.create_time),
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            ),
        );
        row("split", split_text(r));
    }
    out
}

/// Runs `steward explain`.
pub async fn run(a: ExplainArgs, c: &ClientArgs) -> Result<()> {
    let mut client = deployment_client(c).await?;
    let x = client
        .explain_decision(pb::ExplainDecisionRequest {
            request_id: a.request_id,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        print(&js::explanation(&x));
        return Ok(());
    }
    let mut t = table(&["FIELD", "VALUE"]);
    for (k, v) in rows(&x) {
        t.add_row(vec![k, v]);
    }
    println!("{t}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explanation_names_approval_data_code_and_revision() {
        let x = pb::DecisionExplanation {
            decision: Some(pb::DecisionRecord {
                request_id: "req-1".into(),
                deployment: "deployments/d".into(),
                revision: 2,
                variant: "main".into(),
                kind: "route".into(),
                routing_key: "user-1".into(),
                ..Default::default()
            }),
            model_version: "registeredModels/m/versions/1".into(),
            approval_state: "APPROVED".into(),
            approved_by: "bob".into(),
            source_run: "experiments/e/runs/r".into(),
            datasets: vec![pb::DatasetDigest {
                name: "transactions".into(),
                digest: "sha256:ee".into(),
                context: "training".into(),
            }],
            git_commit: "c0ffee".into(),
            revision: Some(pb::Revision {
                number: 2,
                creator: "alice".into(),
                reason: "create".into(),
                variants: vec![pb::Variant {
                    name: "main".into(),
                    version: 1,
                    weight_bp: 10_000,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let rows = rows(&x);
        let get = |k: &str| {
            rows.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {k} in {rows:?}"))
        };
        assert_eq!(
            get("decision"),
            "route variant \"main\" (revision 2), routing key \"user-1\""
        );
        assert!(get("approval").starts_with("APPROVED by bob"));
        assert_eq!(get("dataset"), "transactions sha256:ee (training)");
        assert_eq!(get("git commit"), "c0ffee");
        assert!(get("revision").starts_with("2 applied by alice"));
        assert_eq!(get("split"), "main 100% (v1)");
        assert!(
            !rows.iter().any(|(k, _)| k == "git repo"),
            "empty rows are left out"
        );
    }
}
