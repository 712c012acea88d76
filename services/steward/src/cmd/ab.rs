//! `steward ab results DEPLOYMENT_OR_TEST`.

use anyhow::{Result, bail};
use steward_proto::deployment as pb;

use super::deployment_json as js;
use super::deployments::{deployment_name, get};
use super::output::{table, time};
use super::registry_json::print;
use super::{deployment_client, status_err};
use crate::cli::{AbCmd, ClientArgs};

/// `deployments/{d}/abTests/{t}` as given, or `None` for a deployment.
fn test_name(s: &str) -> Option<String> {
    let rest = s.strip_prefix("deployments/").unwrap_or(s);
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [d, "abTests", t] if !d.is_empty() && !t.is_empty() => {
            Some(format!("deployments/{d}/abTests/{t}"))
        }
        _ => None,
    }
}

/// A p-value: `0.0312`, or `<0.0001`.
pub fn p_text(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// The sample-ratio line: a warning when the assignment does not match the weights.
pub fn srm_text(r: &pb::AbTestResults) -> String {
    if r.sample_ratio_mismatch {
        format!(
            "WARNING: sample ratio mismatch (p = {} < 0.001): the assignment does not match the \
             revision's weights, so the comparisons above cannot be trusted",
            p_text(r.srm_p_value)
        )
    } else {
        format!(
            "sample ratio: ok (chi-squared p = {} against the weights)",
            p_text(r.srm_p_value)
        )
    }
}

/// Runs an A/B test command.
pub async fn run(cmd: AbCmd, c: &ClientArgs) -> Result<()> {
    let mut client = deployment_client(c).await?;
    match cmd {
        AbCmd::Results { target } => {
            let name = match test_name(&target) {
                Some(t) => t,
                None => {
                    let d = get(&mut client, &deployment_name(&target)?).await?;
                    if d.active_ab_test.is_empty() {
                        bail!(
                            "no A/B test is running on {}: give the test's name \
                             ({}/abTests/{{t}})",
                            d.name,
                            d.name
                        );
                    }
                    d.active_ab_test
                }
            };
            let r = client
                .get_ab_test_results(pb::GetAbTestResultsRequest { name })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                print(&js::ab_results(&r));
            } else {
                print_results(&r);
            }
        }
    }
    Ok(())
}

fn print_results(r: &pb::AbTestResults) {
    let t = r.ab_test.clone().unwrap_or_default();
    let alpha = if t.alpha > 0.0 { t.alpha } else { 0.05 };
    let state = js::ab_state(t.state);
    println!(
        "{} ({}): metric {} ({}), alpha {alpha}{}, revision {}, control {}",
        t.name,
        state.trim_start_matches("AB_"),
        t.metric,
        js::metric_kind(t.metric_kind),
        if t.sequential {
            ", sequential (always valid)"
        } else {
            ""
        },
        t.revision,
        t.variants.first().map(String::as_str).unwrap_or("-"),
    );
    if !t.winner.is_empty() {
        println!(
            "winner: {} (concluded {})",
            t.winner,
            time(&t.conclude_time)
        );
    }
    let mut v = table(&["VARIANT", "ASSIGNED", "OUTCOMES", "MEAN", "STD DEV"]);
    for s in &r.variants {
        v.add_row(vec![
            s.variant.clone(),
            s.assigned.to_string(),
            s.n.to_string(),
            format!("{:.4}", s.mean),
            format!("{:.4}", s.std_dev),
        ]);
    }
    println!("{v}");
    let level = format!("{}% CI", ((1.0 - alpha) * 100.0).round());
    let mut cmp = table(&[
        "VARIANT",
        "EFFECT",
        "RELATIVE",
        &level,
        "P-VALUE",
        "SIGNIFICANT",
        "METHOD",
    ]);
    for x in &r.comparisons {
        cmp.add_row(vec![
            x.variant.clone(),
            format!("{:+.4}", x.effect),
            format!("{:+.2}%", x.relative_effect * 100.0),
            format!("[{:.4}, {:.4}]", x.ci_low, x.ci_high),
            p_text(x.p_value),
            if x.significant { "yes" } else { "no" }.into(),
            x.method.clone(),
        ]);
    }
    println!("against the control:\n{cmp}");
    println!("{}", srm_text(r));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_told_from_deployments() {
        assert_eq!(
            test_name("deployments/d/abTests/t").as_deref(),
            Some("deployments/d/abTests/t")
        );
        assert_eq!(
            test_name("d/abTests/t").as_deref(),
            Some("deployments/d/abTests/t")
        );
        assert_eq!(test_name("deployments/d"), None);
        assert_eq!(test_name("d"), None);
        assert_eq!(test_name("d/abTests/"), None);
    }

    #[test]
    fn srm_warns() {
        let mut r = pb::AbTestResults {
            srm_p_value: 0.43,
            ..Default::default()
        };
        assert!(srm_text(&r).starts_with("sample ratio: ok"));
        r.srm_p_value = 1e-9;
        r.sample_ratio_mismatch = true;
        let s = srm_text(&r);
        assert!(s.starts_with("WARNING") && s.contains("<0.0001"), "{s}");
        assert_eq!(p_text(0.03124), "0.0312");
    }
}
