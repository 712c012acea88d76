//! Command-line definitions of the model registry commands: `models`, `versions`, `alias` and
//! `approve`.
//!
//! A model is `registeredModels/{m}` or just `{m}`; a version is
//! `registeredModels/{m}/versions/{v}`, `registeredModels/{m}@{alias}`, `{m}/{v}` or
//! `{m}@{alias}`.

use clap::{ArgGroup, Args, Subcommand};

use crate::cmd::names::parse_tag;

/// `steward models ...`
#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// List registered models.
    List {
        /// Filter, e.g. "name LIKE 'fraud-%' AND tags.team = 'risk'".
        #[arg(long, default_value = "")]
        filter: String,
        /// Order: name, create_time or update_time, with ASC/DESC (default name).
        #[arg(long, default_value = "")]
        order_by: String,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one registered model with its aliases and latest version.
    Get {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
    },
    /// Register a model name.
    Create {
        /// Unique name (`{m}` or `registeredModels/{m}`).
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Tag `key=value`; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
    },
}

/// `steward versions ...`
#[derive(Subcommand, Debug)]
pub enum VersionsCmd {
    /// Show one version (by number or alias).
    Get {
        /// `{m}/{v}`, `{m}@{alias}` or the full resource name.
        #[arg(value_name = "VERSION")]
        name: String,
    },
    /// List the versions of a model, newest first.
    List {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
        /// Filter, e.g. "status = 'READY' AND approval = 'APPROVED'".
        #[arg(long, default_value = "")]
        filter: String,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Register a new version from a run's artifacts or from an external URI.
    #[command(group(ArgGroup::new("source").required(true).args(["run", "uri"])))]
    Create {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
        /// Source run `experiments/{e}/runs/{r}` (with --artifact-path).
        #[arg(long, requires = "artifact_path", conflicts_with = "uri")]
        run: Option<String>,
        /// Directory of the model under the run's artifacts, e.g. "model".
        #[arg(long, requires = "run", conflicts_with = "uri")]
        artifact_path: Option<String>,
        /// External source, e.g. "s3://bucket/models/fraud/7" (with --digest for READY).
        #[arg(long)]
        uri: Option<String>,
        /// Content digest of the external files, "sha256:<hex>".
        #[arg(long, requires = "uri", conflicts_with = "run")]
        digest: Option<String>,
        /// Model format: onnx, sklearn, pytorch, tensorflow, xgboost, lightgbm, huggingface,
        /// pyfunc, custom.
        #[arg(long, default_value = "")]
        format: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Tag `key=value`; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
    },
    /// Differences between two versions: params, metrics (with delta), datasets, signature
    /// and code version.
    Compare {
        /// Base version (`{m}/{v}`, `{m}@{alias}` or the full name).
        base: String,
        /// Other version.
        other: String,
    },
    /// The frozen lineage of a version: params, final metrics, datasets, code version, parent
    /// runs, creator and time.
    Lineage {
        /// `{m}/{v}`, `{m}@{alias}` or the full resource name.
        #[arg(value_name = "VERSION")]
        name: String,
    },
}

/// `steward alias ...`
#[derive(Subcommand, Debug)]
pub enum AliasCmd {
    /// Point an alias at a version (creating or moving it).
    Set {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
        /// Alias, e.g. "champion".
        alias: String,
        /// Version number.
        #[arg(value_name = "VERSION")]
        number: i64,
    },
    /// Remove an alias.
    Delete {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
        /// Alias.
        alias: String,
    },
    /// Every move of a model's aliases, newest first.
    History {
        /// `registeredModels/{m}` or `{m}`.
        model: String,
        /// Only this alias.
        #[arg(long)]
        alias: Option<String>,
        /// Only the move in force at this time (RFC 3339, e.g. 2026-01-31T12:00:00Z); needs
        /// --alias.
        #[arg(long, requires = "alias", value_name = "RFC3339")]
        as_of: Option<String>,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `steward approve ...`
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// `{m}/{v}`, `{m}@{alias}` or the full resource name.
    #[arg(value_name = "VERSION")]
    pub name: String,
    /// Record a rejection instead of an approval.
    #[arg(long)]
    pub reject: bool,
    /// Comment stored with the decision.
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::cli::{Cli, Command, VersionsCmd};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied()))
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_version_has_exactly_one_source() {
        let ok = parse(&[
            "versions",
            "create",
            "m",
            "--run",
            "experiments/e/runs/r",
            "--artifact-path",
            "model",
            "--tag",
            "a=b",
            "--tag",
            "c=d",
        ])
        .unwrap();
        let Command::Versions {
            cmd: VersionsCmd::Create { run, tags, .. },
            ..
        } = ok.command
        else {
            panic!("versions create expected");
        };
        assert_eq!(run.as_deref(), Some("experiments/e/runs/r"));
        assert_eq!(
            tags,
            vec![("a".into(), "b".into()), ("c".into(), "d".into())]
        );
        assert!(
            parse(&[
                "versions",
                "create",
                "m",
                "--uri",
                "s3://b/k",
                "--digest",
                "sha256:ab"
            ])
            .is_ok()
        );
        for bad in [
            &["versions", "create", "m"][..],
            &["versions", "create", "m", "--run", "experiments/e/runs/r"],
            &[
                "versions",
                "create",
                "m",
                "--run",
                "r",
                "--artifact-path",
                "p",
                "--uri",
                "s3://b",
            ],
            &[
                "versions",
                "create",
                "m",
                "--artifact-path",
                "p",
                "--uri",
                "s3://b",
            ],
            &[
                "versions",
                "create",
                "m",
                "--run",
                "r",
                "--artifact-path",
                "p",
                "--digest",
                "x",
            ],
            &[
                "versions", "create", "m", "--uri", "s3://b", "--tag", "novalue",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn as_of_needs_an_alias_and_actor_is_global() {
        assert!(parse(&["alias", "history", "m", "--as-of", "2026-01-01T00:00:00Z"]).is_err());
        let c = parse(&[
            "alias",
            "history",
            "m",
            "--alias",
            "prod",
            "--as-of",
            "2026-01-01T00:00:00Z",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Alias { .. }));
        let c = parse(&["approve", "m@prod", "--reject", "--actor", "bob"]).unwrap();
        let Command::Approve { args, client } = c.command else {
            panic!("approve expected");
        };
        assert!(args.reject);
        assert_eq!(client.actor.as_deref(), Some("bob"));
    }
}
