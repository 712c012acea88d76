//! Steps 8, 10 and 11, what the loop leaves behind: an A/B test's verdict, a prediction
//! explained back to its training data, and the audit trail exported and verified.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result, bail};
use steward_proto::audit as apb;
use steward_proto::deployment as dpb;

use super::data;
use super::lifecycle::{Demo, STAGING, short};
use super::{Waiting, say};
use crate::cmd::ab::{p_text, srm_text};
use crate::cmd::audit::{export_events, offline};
use crate::cmd::deployments::split_text;
use crate::cmd::status_err;

/// Users in the A/B test.
const AB_USERS: u32 = 1000;

impl Demo {
    /// Step 8: main against challenger in staging on a conversion metric, concluded with the
    /// significant winner promoted.
    pub async fn ab_test(&mut self) -> Result<()> {
        let t = self
            .deploy
            .create_ab_test(dpb::CreateAbTestRequest {
                deployment: STAGING.into(),
                ab_test: Some(dpb::AbTest {
                    variants: vec!["main".into(), "challenger".into()],
                    metric: "converted".into(),
                    metric_kind: dpb::MetricKind::Binary as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        say(format!(
            "started {} on revision {}: {} (control) vs {}, metric {} (BINARY)",
            t.name,
            t.revision,
            t.variants.first().map(String::as_str).unwrap_or("-"),
            t.variants.get(1).map(String::as_str).unwrap_or("-"),
            t.metric
        ));
        let wait = Waiting::new("routing users");
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..AB_USERS {
            let r = self
                .deploy
                .route(dpb::RouteRequest {
                    deployment: STAGING.into(),
                    routing_key: format!("user-{i:04}"),
                    request_id: format!("ab-{i:04}"),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let k = seen.entry(r.variant.clone()).or_default();
            *k += 1;
            let converted = data::converts(r.variant == "main", *k);
            self.deploy
                .report_outcome(dpb::ReportOutcomeRequest {
                    ab_test: t.name.clone(),
                    request_id: r.request_id,
                    value: f64::from(u8::from(converted)),
                })
                .await
                .map_err(status_err)?;
            if i % 50 == 49 {
                wait.set(format!("{} users routed, outcomes reported", i + 1));
            }
        }
        drop(wait);
        let res = self
            .deploy
            .get_ab_test_results(dpb::GetAbTestResultsRequest {
                name: t.name.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        say(format!(
            "routed {AB_USERS} users (Route) and reported whether each converted (ReportOutcome)"
        ));
        for v in &res.variants {
            say(format!(
                "  {:<10} {:>3} assigned, {:>3} outcomes, conversion {:.1}%",
                v.variant,
                v.assigned,
                v.n,
                v.mean * 100.0
            ));
        }
        for c in &res.comparisons {
            say(format!(
                "  {} vs {}: effect {:+.1} points ({:+.0}%), 95% CI [{:+.1}, {:+.1}], p {} ({}): \
                 {}",
                c.variant,
                t.variants.first().map(String::as_str).unwrap_or("control"),
                c.effect * 100.0,
                c.relative_effect * 100.0,
                c.ci_low * 100.0,
                c.ci_high * 100.0,
                match p_text(c.p_value) {
                    p if p.starts_with('<') => p.replacen('<', "< ", 1),
                    p => format!("= {p}"),
                },
                c.method,
                if c.significant {
                    "significant"
                } else {
                    "not significant"
                }
            ));
        }
        say(format!("  {}", srm_text(&res)));
        let done = self
            .deploy
            .conclude_ab_test(dpb::ConcludeAbTestRequest {
                name: t.name.clone(),
                winner: String::new(),
                promote_best: true,
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        if done.winner.is_empty() {
            bail!("{} concluded without a winner", t.name);
        }
        let d = self.deployment(STAGING).await?;
        let rev = d.current_revision.unwrap_or_default();
        say(format!(
            "concluded: winner {}, promoted: {} revision {} (\"{}\"): {}",
            done.winner,
            d.name,
            rev.number,
            rev.reason,
            split_text(&rev)
        ));
        Ok(())
    }

    /// Step 10: the first prediction the canary served, traced back to its approval, run and
    /// training data.
    pub async fn explain(&mut self) -> Result<()> {
        if self.canary_request.is_empty() {
            bail!("the canary answered no request");
        }
        let x = self
            .deploy
            .explain_decision(dpb::ExplainDecisionRequest {
                request_id: self.canary_request.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        for (k, v) in crate::cmd::explain::rows(&x) {
            say(format!("{k:<15} {v}"));
        }
        if x.source_run != self.best.resource {
            bail!(
                "the explanation names run {}, not the best run {}",
                x.source_run,
                self.best.resource
            );
        }
        let Some(ds) = x.datasets.iter().find(|d| d.digest == self.digest) else {
            bail!(
                "the explanation does not name the training data {}",
                self.digest
            );
        };
        say(format!(
            "so: {} made it, trained by run {} on {} {} (the data of step 1), approved by {}",
            x.model_version, self.best.name, ds.name, ds.digest, x.approved_by
        ));
        Ok(())
    }

    /// Step 11: every audit record exported as JSON Lines into the data dir, verified offline
    /// against the chain heads, and by the server.
    pub async fn audit(&mut self) -> Result<()> {
        let heads = offline::heads_from(
            self.audit
                .get_audit_chain_heads(apb::GetAuditChainHeadsRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .heads,
        );
        let path = self.dir.join("audit.jsonl");
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        let req = apb::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        };
        let mut by_actor = BTreeMap::<String, i64>::new();
        let total = export_events(&mut self.audit, req, &mut out, |e| {
            *by_actor.entry(e.actor.clone()).or_default() += 1;
        })
        .await?;
        out.flush()?;
        drop(out);
        let actors: Vec<String> = by_actor.iter().map(|(a, n)| format!("{a} {n}")).collect();
        say(format!(
            "exported {total} audit records to {} (by actor: {})",
            path.display(),
            actors.join(", ")
        ));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let reports = offline::verify_export(offline::parse_export(&text)?, &heads);
        for r in &reports {
            say(format!("  {}", offline::describe(r)));
        }
        if let Some(r) = reports.iter().find(|r| !r.ok()) {
            bail!("the export does not verify: {}", offline::describe(r));
        }
        say(format!(
            "verified offline: {} chains, each hash recomputed and linked, ending at the heads \
             the server reported",
            reports.len()
        ));
        let v = self
            .audit
            .verify_audit_chain(apb::VerifyAuditChainRequest {
                service: String::new(),
                anchors: heads
                    .iter()
                    .map(|h| apb::ChainHead {
                        service: h.service.clone(),
                        seq: h.seq,
                        hash: h.hash.clone(),
                    })
                    .collect(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        if !v.ok {
            let bad: Vec<String> = v
                .chains
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{} at seq {}: {}", c.service, c.first_broken_seq, c.problem))
                .collect();
            bail!("the server found broken chains: {}", bad.join("; "));
        }
        let records: i64 = v.chains.iter().map(|c| c.records).sum();
        say(format!(
            "VerifyAuditChain: ok, {} chains, {records} records (head {})",
            v.chains.len(),
            v.chains
                .iter()
                .map(|c| format!(
                    "{} {}",
                    c.service,
                    short(&c.head.clone().unwrap_or_default().hash)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }
}
