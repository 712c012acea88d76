//! The configuration shipped in `deploy/` parses against the config structs: the example TOML
//! files, the Kubernetes ConfigMap and Secret template with each Deployment's env, and the
//! compose file's shared environment. A setting renamed in code but not in `deploy/` fails here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use steward_config::{Config, Overrides};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every YAML document in `path`.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            <Value as serde::Deserialize>::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// A YAML mapping of scalars as an environment map.
fn env_map(v: &Value) -> HashMap<String, String> {
    let Value::Mapping(m) = v else {
        panic!("not a mapping: {v:?}")
    };
    m.iter()
        .filter_map(|(k, v)| {
            let k = k.as_str()?.to_owned();
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k, v))
        })
        .collect()
}

/// `${NAME:-default}` and `${NAME}` as compose resolves them with nothing set: the default, or
/// empty.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn load(env: &HashMap<String, String>) -> Result<Config, steward_config::ConfigError> {
    Config::load(None, env, &Overrides::default())
}

#[test]
fn example_toml_files_load() {
    let dir = deploy_dir().join("config");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/config") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let cfg = Config::load(Some(&path), &HashMap::new(), &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            cfg.metrics_listen.is_some(),
            "{}: the examples show the metrics endpoint",
            path.display()
        );
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    assert_eq!(seen, ["distributed.toml", "steward-up.toml"]);

    let distributed = Config::load(
        Some(&dir.join("distributed.toml")),
        &HashMap::new(),
        &Overrides::default(),
    )
    .unwrap();
    assert!(!distributed.is_sqlite());
    assert!(distributed.redis_url.is_some() && distributed.s3.is_some());
    assert!(distributed.no_migrate);
    assert!(
        !distributed.auth_open(),
        "the distributed example requires keys"
    );
    assert!(distributed.rate_limit_per_s > 0.0);
    let embedded = Config::load(
        Some(&dir.join("steward-up.toml")),
        &HashMap::new(),
        &Overrides::default(),
    )
    .unwrap();
    assert!(embedded.is_sqlite() && embedded.redis_url.is_none() && embedded.s3.is_none());
    assert!(embedded.auth_open(), "steward up on loopback runs open");
    assert_eq!(embedded.rate_limit_per_s, 0.0);
}

#[test]
fn kubernetes_config_map_secret_and_deployment_env_load() {
    let k8s = deploy_dir().join("k8s");
    let docs = documents(&k8s.join("config.yaml"));
    let kind = |d: &Value, k: &str| d.get("kind").and_then(Value::as_str) == Some(k);
    let config_map = docs
        .iter()
        .find(|d| kind(d, "ConfigMap"))
        .expect("ConfigMap");
    let secret = docs.iter().find(|d| kind(d, "Secret")).expect("Secret");
    let mut env = env_map(&config_map["data"]);
    env.extend(env_map(&secret["stringData"]));

    // The template fails closed: its page token key is a placeholder that is too short.
    let e = load(&env).unwrap_err();
    assert_eq!(e.key, "page_token_key", "{e}");

    env.insert("STEWARD_PAGE_TOKEN_KEY".into(), "0".repeat(64));
    for file in [
        "tracking.yaml",
        "registry.yaml",
        "deployment.yaml",
        "monitoring.yaml",
    ] {
        let mut env = env.clone();
        let mut containers = 0;
        for doc in documents(&k8s.join(file)) {
            if !kind(&doc, "Deployment") {
                continue;
            }
            for c in doc["spec"]["template"]["spec"]["containers"]
                .as_sequence()
                .expect("containers")
            {
                containers += 1;
                for var in c
                    .get("env")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                {
                    if let (Some(name), Some(value)) = (
                        var.get("name").and_then(Value::as_str),
                        var.get("value").and_then(Value::as_str),
                    ) {
                        env.insert(name.into(), value.into());
                    }
                }
            }
        }
        assert!(containers > 0, "{file}: no Deployment container");
        let cfg = load(&env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!cfg.is_sqlite(), "{file}: the cluster runs on Postgres");
        assert_eq!(cfg.metrics_listen.map(|a| a.port()), Some(9464), "{file}");
    }
}

#[test]
fn compose_environment_loads() {
    let docs = documents(&deploy_dir().join("docker-compose.yml"));
    let compose = &docs[0];
    let shared: HashMap<String, String> = env_map(&compose["x-steward-env"])
        .into_iter()
        .map(|(k, v)| (k, interpolate(&v)))
        .collect();
    let mut services = 0;
    let Value::Mapping(all) = &compose["services"] else {
        panic!("services")
    };
    for (name, svc) in all {
        let name = name.as_str().unwrap();
        if !name.starts_with("steward-") || name == "steward-migrate" {
            continue;
        }
        services += 1;
        let mut env = shared.clone();
        if let Some(own) = svc.get("environment") {
            env.extend(
                env_map(own)
                    .into_iter()
                    .filter(|(k, _)| k != "<<")
                    .map(|(k, v)| (k, interpolate(&v))),
            );
        }
        let cfg = load(&env).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cfg.is_sqlite(), "{name}");
        assert!(cfg.redis_url.is_some() && cfg.s3.is_some(), "{name}");
    }
    assert_eq!(services, 4, "tracking, registry, deployment and monitoring");
}

#[test]
fn compose_interpolation_takes_the_defaults() {
    assert_eq!(interpolate("a${X:-b}c${Y}d"), "abcd");
    assert_eq!(interpolate("plain"), "plain");
}
