//! The resource a request acts on, as grants name it: `experiments/{e}`,
//! `registeredModels/{m}` or `deployments/{d}`. A grant on a resource covers it and everything
//! under it (runs, versions, aliases, revisions, rollouts, A/B tests, ...).

/// The collections grants can be given on.
pub const COLLECTIONS: [&str; 3] = ["experiments", "registeredModels", "deployments"];

/// The scope of `value`, a resource name or (where the API accepts one) a bare id, in
/// `collection`: `experiments/e1/runs/r1` -> `experiments/e1`,
/// `registeredModels/m@champion` -> `registeredModels/m`, `d1` (collection `deployments`) ->
/// `deployments/d1`. `None` for an empty value, which only a global grant covers.
pub fn scope_of(value: &str, collection: &str) -> Option<String> {
    let value = value.trim();
    let rest = value
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(value);
    let id = rest.split(['/', '@']).next().unwrap_or_default();
    (!id.is_empty()).then(|| format!("{collection}/{id}"))
}

/// The scope of a full resource name whose collection is any of [`COLLECTIONS`].
pub fn scope_of_name(name: &str) -> Option<String> {
    let collection = COLLECTIONS
        .into_iter()
        .find(|c| name.strip_prefix(c).is_some_and(|r| r.starts_with('/')))?;
    scope_of(name, collection)
}

/// Checks a grant's resource: `*` or `{collection}/{id}` with a collection of
/// [`COLLECTIONS`] and nothing after the id.
pub fn is_grantable(resource: &str) -> bool {
    resource == "*" || scope_of_name(resource).as_deref() == Some(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_map_to_their_top_resource() {
        let cases = [
            (
                "experiments/e1/runs/r1",
                "experiments",
                Some("experiments/e1"),
            ),
            ("experiments/e1", "experiments", Some("experiments/e1")),
            (
                "registeredModels/m@champion",
                "registeredModels",
                Some("registeredModels/m"),
            ),
            (
                "registeredModels/m/versions/3",
                "registeredModels",
                Some("registeredModels/m"),
            ),
            ("d1", "deployments", Some("deployments/d1")),
            (
                "deployments/d1/abTests/t",
                "deployments",
                Some("deployments/d1"),
            ),
            ("", "deployments", None),
            ("deployments/", "deployments", None),
        ];
        for (value, collection, want) in cases {
            assert_eq!(scope_of(value, collection).as_deref(), want, "{value}");
        }
        assert_eq!(
            scope_of_name("registeredModels/m/versions/1").as_deref(),
            Some("registeredModels/m")
        );
        assert_eq!(scope_of_name("monitors/x"), None);
    }

    #[test]
    fn only_top_resources_and_star_are_grantable() {
        for ok in ["*", "experiments/e1", "registeredModels/m", "deployments/d"] {
            assert!(is_grantable(ok), "{ok}");
        }
        for bad in [
            "",
            "experiments",
            "experiments/e1/runs/r",
            "monitors/m",
            "**",
            "registeredModels/m@a",
        ] {
            assert!(!is_grantable(bad), "{bad}");
        }
    }
}
