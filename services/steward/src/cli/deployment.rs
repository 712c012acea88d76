//! Command-line definitions of the deployment commands: `deploy`, `rollout`, `ab`, `explain`,
//! `deployments` and `environments`.
//!
//! A deployment is `deployments/{d}` or just `{d}`; an environment `environments/{env}` or
//! `{env}`; a version is given as for the registry commands (`{m}/{v}`, `{m}@{alias}` or the
//! full resource name).

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cmd::plan::{StepPlan, parse_bake, parse_steps};

/// `steward deploy ...`
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The version to deploy: `{m}/{v}`, `{m}@{alias}` or the full resource name (an alias is
    /// resolved and pinned when the revision is applied).
    #[arg(value_name = "MODEL_VERSION_OR_ALIAS")]
    pub model_version: String,
    /// Environment, e.g. staging or production.
    #[arg(long)]
    pub env: String,
    /// Deployment id (default: the model's deployment in the environment, or `{model}-{env}`
    /// for a new one).
    #[arg(long)]
    pub name: Option<String>,
    /// Name of the version's variant in the revision.
    #[arg(long, default_value = "main")]
    pub variant: String,
    /// Share of traffic for the version in basis points (10000 = all, the default). Below
    /// 10000 the deployment's other variants keep the rest, in proportion to their weights.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000), conflicts_with = "canary")]
    pub weight: Option<i32>,
    /// Roll the version out as a canary on the existing deployment, step by step, instead of
    /// switching at once.
    #[arg(long)]
    pub canary: bool,
    /// Canary share of each step in percent, e.g. 5,25,50,100 (the default).
    #[arg(long, requires = "canary", value_parser = parse_steps, value_name = "PCT,PCT,...")]
    pub steps: Option<StepPlan>,
    /// How long each step must stay healthy before the next, e.g. 10m (the default), 90s,
    /// 1h30m.
    #[arg(long, requires = "canary", value_parser = parse_bake, value_name = "DURATION")]
    pub bake: Option<Duration>,
    /// Roll back when more than this share of canary predictions fail (0..1).
    #[arg(long, requires = "canary")]
    pub max_error_rate: Option<f64>,
    /// Roll back when the canary's p99 latency over a step exceeds this many milliseconds.
    #[arg(long, requires = "canary")]
    pub max_p99_ms: Option<f64>,
    /// Canary decisions a step needs before its health is judged and it may finish.
    #[arg(long, requires = "canary")]
    pub min_requests: Option<i64>,
}

/// `steward rollout ...`
#[derive(Subcommand, Debug)]
pub enum RolloutCmd {
    /// The running (else the latest) rollout of a deployment: step, weights and history.
    Status {
        /// `deployments/{d}` or `{d}`.
        deployment: String,
    },
    /// Move the running rollout to its next step now (or complete it from the last step).
    Promote {
        /// `deployments/{d}` or `{d}`.
        deployment: String,
        /// Why (kept in the rollout's history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Roll the running rollout back to the revision it started from.
    Rollback {
        /// `deployments/{d}` or `{d}`.
        deployment: String,
        /// Why (kept in the rollout's history).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `steward ab ...`
#[derive(Subcommand, Debug)]
pub enum AbCmd {
    /// Results of an A/B test: per-variant statistics, each variant against the control
    /// (effect, confidence interval, p-value) and the sample-ratio check.
    Results {
        /// `deployments/{d}` (its running test) or `deployments/{d}/abTests/{t}`.
        #[arg(value_name = "DEPLOYMENT_OR_TEST")]
        target: String,
    },
}

/// `steward explain ...`
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The request id of a routed or served request.
    pub request_id: String,
}

/// `steward deployments ...`
#[derive(Subcommand, Debug)]
pub enum DeploymentsCmd {
    /// List deployments with their current split and running rollout or A/B test.
    List {
        /// Only deployments of this model (`{m}` or `registeredModels/{m}`).
        #[arg(long)]
        model: Option<String>,
        /// Only in this environment (`{env}` or `environments/{env}`).
        #[arg(long)]
        env: Option<String>,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `steward environments ...`
#[derive(Subcommand, Debug)]
pub enum EnvironmentsCmd {
    /// List environments in promotion order with their policies.
    List,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use crate::cli::{Cli, Command, RolloutCmd};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied()))
    }

    #[test]
    fn deploy_parses_a_plain_and_a_canary_deploy() {
        let c = parse(&["deploy", "fraud@champion", "--env", "staging"]).unwrap();
        let Command::Deploy { args, .. } = c.command else {
            panic!("deploy expected");
        };
        assert_eq!(args.model_version, "fraud@champion");
        assert!(!args.canary && args.weight.is_none() && args.steps.is_none());
        assert_eq!(args.variant, "main");

        let c = parse(&[
            "deploy",
            "fraud/3",
            "--env",
            "production",
            "--canary",
            "--steps",
            "5,25,50,100",
            "--bake",
            "10m",
            "--max-error-rate",
            "0.01",
            "--max-p99-ms",
            "50",
            "--min-requests",
            "100",
        ])
        .unwrap();
        let Command::Deploy { args, .. } = c.command else {
            panic!("deploy expected");
        };
        assert!(args.canary);
        assert_eq!(args.steps.unwrap().0, vec![500, 2_500, 5_000, 10_000]);
        assert_eq!(args.bake, Some(Duration::from_secs(600)));
        assert_eq!(
            (args.max_error_rate, args.max_p99_ms, args.min_requests),
            (Some(0.01), Some(50.0), Some(100))
        );
    }

    #[test]
    fn deploy_refuses_mixed_or_bad_options() {
        for bad in [
            &["deploy", "m/1"][..],
            &["deploy", "m/1", "--env", "staging", "--steps", "5,100"],
            &["deploy", "m/1", "--env", "staging", "--bake", "10m"],
            &["deploy", "m/1", "--env", "s", "--canary", "--weight", "100"],
            &["deploy", "m/1", "--env", "s", "--weight", "0"],
            &["deploy", "m/1", "--env", "s", "--weight", "10001"],
            &["deploy", "m/1", "--env", "s", "--canary", "--steps", "50,5"],
            &["deploy", "m/1", "--env", "s", "--canary", "--bake", "ten"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let c = parse(&["deploy", "m/1", "--env", "s", "--weight", "2500"]).unwrap();
        let Command::Deploy { args, .. } = c.command else {
            panic!("deploy expected");
        };
        assert_eq!(args.weight, Some(2_500));
    }

    #[test]
    fn rollout_ab_explain_and_lists_parse() {
        let c = parse(&["rollout", "rollback", "d", "--reason", "bad", "--json"]).unwrap();
        let Command::Rollout { cmd, client } = c.command else {
            panic!("rollout expected");
        };
        assert!(matches!(cmd, RolloutCmd::Rollback { reason, .. } if reason == "bad"));
        assert!(client.json);
        for ok in [
            &["rollout", "status", "deployments/d"][..],
            &["rollout", "promote", "d"],
            &["ab", "results", "deployments/d/abTests/t"],
            &["explain", "req-1"],
            &["deployments", "list", "--model", "m", "--env", "staging"],
            &["environments", "list"],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        assert!(parse(&["explain"]).is_err());
    }
}
