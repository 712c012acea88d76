//! Roles and the actions they allow.

use std::fmt;
use std::str::FromStr;

use steward_common::Error;

/// A role, granted globally (`*`) or on one resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and writes (create, update, log, deploy, route, predict).
    Editor,
    /// Reads, and approves or rejects model versions.
    Reviewer,
    /// Everything, including keys, grants, environments, channels and the audit log.
    Admin,
}

/// What a method does, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Any authenticated caller (health needs nothing at all and never reaches the gate).
    Authenticated,
    /// Read.
    Read,
    /// Create, change or delete.
    Write,
    /// Approve or reject a model version.
    Review,
    /// Administer.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Reviewer, Role::Admin];

    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Authenticated | Action::Read => true,
            Action::Write => matches!(self, Role::Editor | Role::Admin),
            Action::Review => matches!(self, Role::Reviewer | Role::Admin),
            Action::Admin => self == Role::Admin,
        }
    }

    /// The name used in grants and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name, naming `field` when it is not one.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` on `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, Error> {
        s.parse().map_err(|()| {
            Error::invalid_field(
                field,
                format!("{s:?} is not a role: use viewer, editor, reviewer or admin"),
            )
        })
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_the_docs_say() {
        use Action::*;
        let table = [
            (Role::Viewer, [true, true, false, false, false]),
            (Role::Editor, [true, true, true, false, false]),
            (Role::Reviewer, [true, true, false, true, false]),
            (Role::Admin, [true, true, true, true, true]),
        ];
        for (role, expect) in table {
            let got = [Authenticated, Read, Write, Review, Admin].map(|a| role.allows(a));
            assert_eq!(got, expect, "{role}");
        }
    }

    #[test]
    fn roles_parse_and_bad_ones_name_the_field() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str(), "role").unwrap(), r);
        }
        assert_eq!(Role::parse(" Admin ", "role").unwrap(), Role::Admin);
        let err = Role::parse("root", "grant.role").unwrap_err();
        assert_eq!(err.violations[0].field, "grant.role");
    }
}
