//! Who is calling, with the grants loaded when the key was checked.

use std::collections::HashMap;

use crate::role::{Action, Role};

/// The principal of a `steward up` process's own services calling each other.
pub const INTERNAL: &str = "steward-internal";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name (the audit records' actor).
    pub name: String,
    /// The key used (`apiKeys/{id}`), empty for the process's own services.
    pub key: String,
    /// A service calling another (a service key, or the process's own services): exempt from
    /// rate limits.
    pub service: bool,
    /// Role per resource (`*` = global).
    pub grants: HashMap<String, Role>,
}

impl Principal {
    /// Whether the principal may do `action` on `scope` (`None`: only a global grant counts).
    pub fn may(&self, action: Action, scope: Option<&str>) -> bool {
        if action == Action::Authenticated {
            return true;
        }
        let global = self.grants.get("*").is_some_and(|r| r.allows(action));
        global
            || scope
                .and_then(|s| self.grants.get(s))
                .is_some_and(|r| r.allows(action))
    }

    /// The services of one `steward up` process calling each other: read-only everywhere.
    pub fn internal() -> Self {
        Self {
            name: INTERNAL.into(),
            key: String::new(),
            service: true,
            grants: HashMap::from([("*".to_owned(), Role::Viewer)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(grants: &[(&str, Role)]) -> Principal {
        Principal {
            name: "p".into(),
            key: String::new(),
            service: false,
            grants: grants.iter().map(|(s, r)| (s.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn grants_apply_globally_or_to_their_resource_only() {
        let bob = p(&[("experiments/e1", Role::Editor)]);
        assert!(bob.may(Action::Write, Some("experiments/e1")));
        assert!(bob.may(Action::Read, Some("experiments/e1")));
        assert!(!bob.may(Action::Read, Some("experiments/e2")));
        assert!(!bob.may(Action::Read, None));
        assert!(bob.may(Action::Authenticated, None));
        let viewer = p(&[("*", Role::Viewer), ("deployments/d", Role::Editor)]);
        assert!(viewer.may(Action::Read, None));
        assert!(!viewer.may(Action::Write, Some("deployments/x")));
        assert!(viewer.may(Action::Write, Some("deployments/d")));
        assert!(!viewer.may(Action::Review, Some("deployments/d")));
        let internal = Principal::internal();
        assert!(internal.may(Action::Read, Some("experiments/any")));
        assert!(!internal.may(Action::Write, Some("experiments/any")));
    }
}
