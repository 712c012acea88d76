//! Alias policies: rules checked whenever an alias is set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use steward_common::Error;

use super::model::{ApprovalState, Lineage, ModelVersion, VersionStatus};

/// Max rules per model.
pub const MAX_RULES: usize = 50;

/// A condition on a final metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricCondition {
    /// Metric key.
    pub metric: String,
    /// `>=`, `>`, `<=`, `<`, `==`, `!=`.
    pub op: String,
    /// Threshold.
    pub value: f64,
}

impl MetricCondition {
    fn holds(&self, v: f64) -> bool {
        match self.op.as_str() {
            ">=" => v >= self.value,
            ">" => v > self.value,
            "<=" => v <= self.value,
            "<" => v < self.value,
            "==" => v == self.value,
            "!=" => v != self.value,
            _ => false,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// Unique name, named in errors.
    pub name: String,
    /// Alias it applies to, or `*`.
    pub alias: String,
    /// Version must be APPROVED.
    pub require_approved: bool,
    /// Metric conditions.
    pub metrics: Vec<MetricCondition>,
    /// Tag keys that must be set on the version.
    pub required_tags: Vec<String>,
}

/// A model's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Policy {
    /// Model.
    pub model: String,
    /// Rules.
    pub rules: Vec<PolicyRule>,
    /// Updated, ms (0 when never set).
    pub update_time: i64,
    /// Etag (0 when never set).
    pub revision: i64,
}

/// Validates rules: names unique and well-formed, aliases valid or `*`, known operators,
/// finite thresholds.
pub fn validate(rules: &[PolicyRule]) -> Result<(), Error> {
    if rules.len() > MAX_RULES {
        return Err(Error::limit(
            "policy.rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let f = format!("policy.rules[{i}]");
        if r.name.is_empty() || r.name.len() > 128 || r.name.chars().any(char::is_control) {
            return Err(Error::invalid_field(
                format!("{f}.name"),
                "must be 1-128 characters without control characters",
            ));
        }
        if !names.insert(r.name.as_str()) {
            return Err(Error::invalid_field(
                format!("{f}.name"),
                format!("duplicate rule name {:?}", r.name),
            ));
        }
        if r.alias != "*" {
            steward_common::names::parse_alias(&r.alias, &format!("{f}.alias"))?;
        }
        if r.metrics.len() > 50 || r.required_tags.len() > 50 {
            return Err(Error::limit(
                f,
                "at most 50 metric conditions and 50 required tags",
            ));
        }
        for (j, c) in r.metrics.iter().enumerate() {
            let cf = format!("{f}.metrics[{j}]");
            if c.metric.is_empty() || c.metric.len() > 250 {
                return Err(Error::invalid_field(
                    format!("{cf}.metric"),
                    "must be 1-250 bytes",
                ));
            }
            if !matches!(c.op.as_str(), ">=" | ">" | "<=" | "<" | "==" | "!=") {
                return Err(Error::invalid_field(
                    format!("{cf}.op"),
                    format!("{:?} is not one of >=, >, <=, <, ==, !=", c.op),
                ));
            }
            if !c.value.is_finite() {
                return Err(Error::invalid_field(
                    format!("{cf}.value"),
                    "must be a finite number",
                ));
            }
        }
        for (j, t) in r.required_tags.iter().enumerate() {
            if t.is_empty() || t.len() > 250 {
                return Err(Error::invalid_field(
                    format!("{f}.required_tags[{j}]"),
                    "must be 1-250 bytes",
                ));
            }
        }
    }
    Ok(())
}

/// Why `rule` refuses `version` (with `lineage`), or `None` when it allows it.
pub fn violation(rule: &PolicyRule, version: &ModelVersion, lineage: &Lineage) -> Option<String> {
    if rule.require_approved && version.approval != ApprovalState::Approved {
        return Some(format!(
            "requires an APPROVED version; version {} is {}",
            version.version,
            version.approval.name()
        ));
    }
    for c in &rule.metrics {
        match lineage.metrics.get(&c.metric) {
            None => {
                return Some(format!(
                    "requires metric {} {} {}; version {} has no metric {:?}",
                    c.metric, c.op, c.value, version.version, c.metric
                ));
            }
            Some(v) if !c.holds(*v) => {
                return Some(format!(
                    "requires metric {} {} {}; version {} has {}",
                    c.metric, c.op, c.value, version.version, v
                ));
            }
            Some(_) => {}
        }
    }
    for t in &rule.required_tags {
        if !version.tags.contains_key(t) {
            return Some(format!("requires the version tag {t:?}"));
        }
    }
    None
}

/// Checks every rule of `policy` that applies to `alias`; the first failure is
/// `FAILED_PRECONDITION` (`POLICY_VIOLATION`) naming the rule. Versions that are not READY can
/// never be aliased (`VERSION_NOT_READY`).
pub fn check_alias(
    policy: &Policy,
    alias: &str,
    version: &ModelVersion,
    lineage: &Lineage,
) -> Result<(), Error> {
    if version.status != VersionStatus::Ready {
        return Err(Error::failed_precondition(
            "VERSION_NOT_READY",
            format!(
                "{} is {}; only READY versions can be aliased",
                version.resource(),
                version.status.name()
            ),
        ));
    }
    for rule in policy
        .rules
        .iter()
        .filter(|r| r.alias == "*" || r.alias == alias)
    {
        if let Some(why) = violation(rule, version, lineage) {
            let mut e = Error::failed_precondition(
                "POLICY_VIOLATION",
                format!("policy rule {:?} refuses alias {alias:?}: {why}", rule.name),
            );
            e.metadata = BTreeMap::from([
                ("rule".to_string(), rule.name.clone()),
                ("alias".to_string(), alias.to_string()),
            ]);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Signature, VersionStatus};

    fn version(approval: ApprovalState) -> ModelVersion {
        ModelVersion {
            model: "m".into(),
            version: 3,
            source_run: String::new(),
            artifact_path: String::new(),
            source_uri: String::new(),
            artifact_uri: String::new(),
            content_digest: String::new(),
            signature: Signature::default(),
            format: "onnx".into(),
            status: VersionStatus::Ready,
            status_message: String::new(),
            description: String::new(),
            tags: Default::default(),
            approval,
            last_review: None,
            aliases: vec![],
            creator: "a".into(),
            create_time: 0,
            update_time: 0,
            revision: 1,
        }
    }

    fn gate() -> Policy {
        Policy {
            model: "m".into(),
            rules: vec![PolicyRule {
                name: "prod-gate".into(),
                alias: "production".into(),
                require_approved: true,
                metrics: vec![MetricCondition {
                    metric: "auc".into(),
                    op: ">=".into(),
                    value: 0.8,
                }],
                required_tags: vec![],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_example_rule_of_the_issue() {
        let mut l = Lineage::default();
        l.metrics.insert("auc".into(), 0.85);
        let p = gate();
        check_alias(&p, "production", &version(ApprovalState::Approved), &l).unwrap();
        // Other aliases are not governed by it.
        check_alias(&p, "staging", &version(ApprovalState::Pending), &l).unwrap();
        let e = check_alias(&p, "production", &version(ApprovalState::Pending), &l).unwrap_err();
        assert_eq!(e.reason, "POLICY_VIOLATION");
        assert_eq!(e.metadata["rule"], "prod-gate");
        assert!(e.message.contains("prod-gate"), "{}", e.message);
        l.metrics.insert("auc".into(), 0.79);
        let e = check_alias(&p, "production", &version(ApprovalState::Approved), &l).unwrap_err();
        assert!(e.message.contains("0.79"), "{}", e.message);
        l.metrics.clear();
        assert!(check_alias(&p, "production", &version(ApprovalState::Approved), &l).is_err());
    }

    #[test]
    fn bad_rules_name_the_field() {
        let mut r = gate().rules;
        r[0].metrics[0].op = "=>".into();
        assert_eq!(
            validate(&r).unwrap_err().violations[0].field,
            "policy.rules[0].metrics[0].op"
        );
        let mut r = gate().rules;
        r.push(r[0].clone());
        assert_eq!(
            validate(&r).unwrap_err().violations[0].field,
            "policy.rules[1].name"
        );
        let mut r = gate().rules;
        r[0].alias = "Prod!".into();
        assert_eq!(
            validate(&r).unwrap_err().violations[0].field,
            "policy.rules[0].alias"
        );
        let mut r = gate().rules;
        r[0].metrics[0].value = f64::NAN;
        assert!(validate(&r).is_err());
    }
}
