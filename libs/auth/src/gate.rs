//! The [`Gate`] every Steward server runs: who is calling (API key, or the process's own
//! services), and whether the method's [rule](crate::rules) lets them.
//!
//! Keys and grants are read from the shared database and cached for [`CACHE_TTL`], so a
//! revoked key or a changed grant takes effect within that time on every replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::HeaderMap;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value,
};
use steward_common::{Error, ErrorKind};
use steward_grpc::{Admission, Gate, GateCall, INTERNAL_HEADER, internal_token, to_status};
use steward_storage::Db;
use tonic::Status;

use crate::key;
use crate::principal::Principal;
use crate::role::Action;
use crate::rules::{On, RULES, Rule, rule};
use crate::scope::{scope_of, scope_of_name};
use crate::store::{self, GrantRow, KeyRow};

/// How long a key and its grants are trusted before they are read again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most cached keys, and most remembered unknown ids (each map is emptied when full).
const CACHE_MAX: usize = 10_000;
/// Key lookups in the database at once.
const LOOKUPS: usize = 8;

/// Whether calls without a key are let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Calls without a key run as the `x-steward-actor` they name (else `anonymous`) with every
    /// permission: `steward up` on a loopback address, or auth explicitly disabled. A key that
    /// is sent is still checked, and its principal's grants apply.
    Open,
    /// Every call except health needs a valid key.
    Required,
}

struct Loaded {
    key: KeyRow,
    grants: Vec<GrantRow>,
}

type CacheEntry = (Instant, Option<Arc<Loaded>>);

/// Byte strings equal, compared in constant time (for equal lengths).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// See the module docs.
pub struct AuthGate {
    mode: AuthMode,
    db: Db,
    accept_internal: bool,
    pool: DescriptorPool,
    rules: HashMap<&'static str, Rule>,
    cache: Mutex<HashMap<String, CacheEntry>>,
    /// Ids looked up and not found, apart, so that garbage keys cannot evict real ones.
    misses: Mutex<HashMap<String, Instant>>,
    /// Database lookups of keys at once (a flood of unknown keys waits here).
    lookups: tokio::sync::Semaphore,
}

impl std::fmt::Debug for AuthGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGate")
            .field("mode", &self.mode)
            .field("accept_internal", &self.accept_internal)
            .finish_non_exhaustive()
    }
}

fn unauthenticated(reason: &'static str, message: &str) -> Status {
    to_status(&Error::new(ErrorKind::Unauthenticated, reason, message))
}

fn denied(message: String) -> Status {
    to_status(&Error::new(
        ErrorKind::PermissionDenied,
        "PERMISSION_DENIED",
        message,
    ))
}

impl AuthGate {
    /// A gate over the keys and grants in `db`. `accept_internal`: also admit this process's
    /// own services ([`internal_token`]) as a read-only principal (`steward up`).
    ///
    /// # Errors
    /// `INTERNAL` when the API descriptors do not load.
    pub fn new(mode: AuthMode, db: Db, accept_internal: bool) -> Result<Self, Error> {
        let pool = DescriptorPool::decode(steward_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| Error::internal(format!("API descriptors: {e}")))?;
        Ok(Self {
            mode,
            db,
            accept_internal,
            pool,
            rules: RULES.iter().copied().collect(),
            cache: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
            lookups: tokio::sync::Semaphore::new(LOOKUPS),
        })
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    fn rule(&self, path: &str) -> Option<Rule> {
        self.rules.get(path).copied().or_else(|| rule(path))
    }

    /// The principal a request authenticates as: `Ok(None)` in open mode without a key.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without a valid key where one is needed.
    pub async fn principal(&self, headers: &HeaderMap) -> Result<Option<Principal>, Status> {
        if self.accept_internal
            && headers
                .get(INTERNAL_HEADER)
                .is_some_and(|v| same_secret(v.as_bytes(), internal_token().as_bytes()))
        {
            return Ok(Some(Principal::internal()));
        }
        let Some(value) = headers.get("authorization") else {
            return match self.mode {
                AuthMode::Open => Ok(None),
                AuthMode::Required => Err(unauthenticated(
                    "API_KEY_REQUIRED",
                    "this server needs an API key: send `authorization: Bearer stw_...` (steward --token)",
                )),
            };
        };
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some((id, secret)) = bearer.and_then(key::parse) else {
            return Err(unauthenticated(
                "API_KEY_MALFORMED",
                "authorization must be `Bearer stw_{id}_{secret}`",
            ));
        };
        let loaded = self.load(id).await.map_err(|e| to_status(&e))?;
        let now = chrono::Utc::now().timestamp_millis();
        match loaded {
            Some(l) if key::matches(secret, &l.key.secret_hash) && l.key.usable(now) => {
                Ok(Some(Principal {
                    name: l.key.principal.clone(),
                    key: format!("apiKeys/{}", l.key.id),
                    service: l.key.kind == 2,
                    grants: l
                        .grants
                        .iter()
                        .filter_map(|g| Some((g.resource.clone(), g.role()?)))
                        .collect(),
                }))
            }
            _ => Err(unauthenticated(
                "API_KEY_INVALID",
                "the API key is unknown, expired or revoked",
            )),
        }
    }

    async fn load(&self, id: &str) -> Result<Option<Arc<Loaded>>, Error> {
        let fresh = |at: &Instant| at.elapsed() < CACHE_TTL;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|(at, _)| fresh(at))
            .map(|(_, hit)| hit.clone());
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let missed = self
            .misses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(fresh);
        if missed {
            return Ok(None);
        }
        let _slot = self
            .lookups
            .acquire()
            .await
            .map_err(|_| Error::unavailable("SHUTTING_DOWN", "shutting down"))?;
        let loaded = match store::key(self.db.conn(), id).await? {
            Some(key) => {
                let grants = store::grants(self.db.conn(), Some(&key.principal)).await?;
                Some(Arc::new(Loaded { key, grants }))
            }
            None => None,
        };
        match &loaded {
            Some(l) => {
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CACHE_MAX {
                    cache.retain(|_, (at, _)| fresh(at));
                    if cache.len() >= CACHE_MAX {
                        cache.clear();
                    }
                }
                cache.insert(id.to_owned(), (Instant::now(), Some(l.clone())));
            }
            None => {
                let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
                if misses.len() >= CACHE_MAX {
                    misses.clear();
                }
                misses.insert(id.to_owned(), Instant::now());
            }
        }
        Ok(loaded)
    }

    fn input(&self, path: &str) -> Option<MessageDescriptor> {
        self.method(path).map(|m| m.input())
    }

    fn method(&self, path: &str) -> Option<prost_reflect::MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
    }

    fn check(
        &self,
        path: &str,
        rule: Rule,
        p: &Principal,
        message: Option<&[u8]>,
    ) -> Result<Option<steward_grpc::ResponseFilter>, Status> {
        let need = |scope: Option<&str>| {
            denied(format!(
                "{} may not {} {}",
                p.name,
                verb(rule.action),
                scope.unwrap_or("this (a global grant is needed)")
            ))
        };
        match rule.on {
            On::Global => {
                if !p.may(rule.action, None) {
                    return Err(need(None));
                }
                if !rule.reads.is_empty() {
                    let msg = self.decode(path, message)?;
                    self.check_reads(rule, p, msg.as_ref())?;
                }
                Ok(None)
            }
            On::Fields(collection, fields) => {
                let msg = self.decode(path, message)?;
                for field in fields {
                    let value = msg
                        .as_ref()
                        .map(|m| string_at(m, field))
                        .unwrap_or_default();
                    let scope = scope_of(&value, collection);
                    if !p.may(rule.action, scope.as_deref()) {
                        return Err(need(scope.as_deref()));
                    }
                }
                self.check_reads(rule, p, msg.as_ref())?;
                Ok(None)
            }
            On::List(items) => {
                if p.may(Action::Read, None) {
                    return Ok(None);
                }
                let Some(out) = self.method(path).map(|m| m.output()) else {
                    return Err(need(None));
                };
                let p = p.clone();
                Ok(Some(Box::new(move |bytes: Bytes| {
                    keep_readable(out, items, &p, bytes)
                })))
            }
        }
    }
}

impl AuthGate {
    fn decode(&self, path: &str, message: Option<&[u8]>) -> Result<Option<DynamicMessage>, Status> {
        match (self.input(path), message) {
            (Some(desc), Some(bytes)) => DynamicMessage::decode(desc, bytes)
                .map(Some)
                .map_err(|_| Status::invalid_argument("the request message does not parse")),
            _ => Ok(None),
        }
    }

    /// Every resource named in `rule.reads` must be readable (empty values name nothing).
    fn check_reads(
        &self,
        rule: Rule,
        p: &Principal,
        msg: Option<&DynamicMessage>,
    ) -> Result<(), Status> {
        let Some(msg) = msg else { return Ok(()) };
        for (collection, field) in rule.reads {
            for value in strings_at(msg, field) {
                if value.is_empty() {
                    continue;
                }
                let scope = scope_of(&value, collection);
                if !p.may(Action::Read, scope.as_deref()) {
                    return Err(denied(format!(
                        "{} may not read {}, which {field} names",
                        p.name,
                        scope.as_deref().unwrap_or("this")
                    )));
                }
            }
        }
        Ok(())
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Authenticated | Action::Read => "read",
        Action::Write => "write to",
        Action::Review => "review versions of",
        Action::Admin => "administer",
    }
}

/// Every string at dotted `path` in `m`, repeated fields on the way counting each element.
fn strings_at(m: &DynamicMessage, path: &str) -> Vec<String> {
    let Some((step, rest)) = path
        .split_once('.')
        .map_or(Some((path, None)), |(a, b)| Some((a, Some(b))))
    else {
        return Vec::new();
    };
    let Some(field) = m.descriptor().get_field_by_name(step) else {
        return Vec::new();
    };
    let value = m.get_field(&field);
    let items: Vec<&Value> = match value.as_list() {
        Some(list) => list.iter().collect(),
        None => vec![&*value],
    };
    let mut out = Vec::new();
    for item in items {
        match (rest, item) {
            (None, Value::String(s)) => out.push(s.clone()),
            (Some(rest), Value::Message(next)) => out.extend(strings_at(next, rest)),
            _ => {}
        }
    }
    out
}

/// The string at dotted `path` in `m` (empty when a step is missing or not a message/string).
fn string_at(m: &DynamicMessage, path: &str) -> String {
    let mut cur = m.clone();
    let mut steps = path.split('.').peekable();
    while let Some(step) = steps.next() {
        let Some(field) = cur.descriptor().get_field_by_name(step) else {
            return String::new();
        };
        let value = cur.get_field(&field).into_owned();
        match (steps.peek(), value) {
            (None, Value::String(s)) => return s,
            (Some(_), Value::Message(next)) => cur = next,
            _ => return String::new(),
        }
    }
    String::new()
}

/// Drops the items of list field `items` whose `name` the principal may not read.
fn keep_readable(
    out: MessageDescriptor,
    items: &str,
    p: &Principal,
    bytes: Bytes,
) -> Result<Bytes, Status> {
    let mut msg = DynamicMessage::decode(out, bytes)
        .map_err(|_| Status::internal("response does not parse"))?;
    let Some(field) = msg.descriptor().get_field_by_name(items) else {
        return Err(Status::internal("list rule names a missing field"));
    };
    let kept: Vec<Value> = match msg.get_field(&field).as_list() {
        Some(list) => list
            .iter()
            .filter(|item| {
                item.as_message().is_some_and(|m| {
                    let scope = scope_of_name(&string_at(m, "name"));
                    scope.is_some() && p.may(Action::Read, scope.as_deref())
                })
            })
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    msg.set_field(&field, Value::List(kept));
    Ok(Bytes::from(prost::Message::encode_to_vec(&msg)))
}

impl Gate for AuthGate {
    fn admit<'a>(&'a self, call: GateCall<'a>) -> BoxFuture<'a, Result<Admission, Status>> {
        Box::pin(async move {
            let Some(rule) = self.rule(call.path) else {
                return Err(to_status(&Error::new(
                    ErrorKind::PermissionDenied,
                    "NO_AUTHORIZATION_RULE",
                    format!("{} has no authorization rule", call.path),
                )));
            };
            let Some(p) = self.principal(call.headers).await? else {
                return Ok(Admission::default());
            };
            // A resource rule needs the request, unless global grants decide already.
            let decided =
                p.may(rule.action, None) && (rule.reads.is_empty() || p.may(Action::Read, None));
            let resource = matches!(rule.on, On::Fields(..)) || !rule.reads.is_empty();
            let unlimited = p.service;
            if resource && !decided && !call.with_message {
                return Ok(Admission {
                    actor: Some(p.name),
                    need_message: true,
                    unlimited,
                    ..Admission::default()
                });
            }
            let filter = self.check(call.path, rule, &p, call.message)?;
            Ok(Admission {
                actor: Some(p.name),
                filter,
                need_message: false,
                unlimited,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(steward_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    /// Every method of every service in the API descriptors has a rule, and every field a rule
    /// names exists in the method's request as a string (or a path of messages to one); every
    /// rule names a real method, and list rules name a repeated message field with a `name`.
    #[test]
    fn every_method_has_a_rule_that_fits_its_messages() {
        let pool = pool();
        let mut methods = Vec::new();
        for service in pool.services() {
            for m in service.methods() {
                methods.push((format!("/{}/{}", service.full_name(), m.name()), m));
            }
        }
        assert!(
            methods.len() > 100,
            "descriptors hold {} methods",
            methods.len()
        );
        let mut missing = Vec::new();
        for (path, m) in &methods {
            let Some(rule) = rule(path) else {
                missing.push(path.clone());
                continue;
            };
            match rule.on {
                On::Global => {}
                On::Fields(collection, fields) => {
                    assert!(crate::scope::COLLECTIONS.contains(&collection), "{path}");
                    for f in fields {
                        let mut desc = m.input();
                        let steps: Vec<&str> = f.split('.').collect();
                        for (i, step) in steps.iter().enumerate() {
                            let fd = desc
                                .get_field_by_name(step)
                                .unwrap_or_else(|| panic!("{path}: no field {f}"));
                            assert!(!fd.is_list(), "{path}: {f} is repeated");
                            match fd.kind() {
                                prost_reflect::Kind::String if i == steps.len() - 1 => {}
                                prost_reflect::Kind::Message(next) if i < steps.len() - 1 => {
                                    desc = next
                                }
                                other => panic!("{path}: {f} step {step} is {other:?}"),
                            }
                        }
                    }
                }
                On::List(items) => {
                    let fd = m
                        .output()
                        .get_field_by_name(items)
                        .unwrap_or_else(|| panic!("{path}: no response field {items}"));
                    assert!(fd.is_list(), "{path}: {items} is not repeated");
                    let item = fd.kind();
                    let item = item.as_message().expect("list of messages");
                    assert!(item.get_field_by_name("name").is_some(), "{path}");
                }
            }
        }
        assert!(
            missing.is_empty(),
            "methods without an authorization rule: {missing:#?}"
        );
        for (path, _) in RULES {
            assert!(
                methods.iter().any(|(p, _)| p == path),
                "rule for a method that does not exist: {path}"
            );
        }
        assert_eq!(
            rule("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").map(|r| r.action),
            Some(Action::Authenticated)
        );
        assert_eq!(
            rule("/steward.tracking.v1.TrackingService/NoSuchMethod"),
            None
        );
    }

    #[test]
    fn fields_are_read_along_dotted_paths() {
        let pool = pool();
        let desc = pool
            .get_message_by_name("steward.tracking.v1.UploadArtifactRequest")
            .unwrap();
        let header = steward_proto::tracking::UploadArtifactRequest {
            part: Some(
                steward_proto::tracking::upload_artifact_request::Part::Header(
                    steward_proto::tracking::ArtifactHeader {
                        run: "experiments/e1/runs/r1".into(),
                        ..Default::default()
                    },
                ),
            ),
        };
        let m = DynamicMessage::decode(desc.clone(), &prost::Message::encode_to_vec(&header)[..])
            .unwrap();
        assert_eq!(string_at(&m, "header.run"), "experiments/e1/runs/r1");
        assert_eq!(string_at(&m, "header.nope"), "");
        let chunk = steward_proto::tracking::UploadArtifactRequest {
            part: Some(
                steward_proto::tracking::upload_artifact_request::Part::Chunk(Bytes::from_static(
                    b"xyz",
                )),
            ),
        };
        let m = DynamicMessage::decode(desc, &prost::Message::encode_to_vec(&chunk)[..]).unwrap();
        assert_eq!(
            string_at(&m, "header.run"),
            "",
            "an unset header has no run"
        );
    }

    #[test]
    fn repeated_fields_on_a_path_count_each_element() {
        let pool = pool();
        let desc = pool
            .get_message_by_name("steward.deployment.v1.ApplyRevisionRequest")
            .unwrap();
        let req = steward_proto::deployment::ApplyRevisionRequest {
            variants: ["registeredModels/a/versions/1", "registeredModels/b@x"]
                .iter()
                .map(|v| steward_proto::deployment::Variant {
                    model_version: (*v).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let m = DynamicMessage::decode(desc, &prost::Message::encode_to_vec(&req)[..]).unwrap();
        assert_eq!(
            strings_at(&m, "variants.model_version"),
            ["registeredModels/a/versions/1", "registeredModels/b@x"]
        );
        assert_eq!(strings_at(&m, "shadow.model_version"), [""]);
        assert!(strings_at(&m, "nope.model_version").is_empty());
    }

    #[test]
    fn list_responses_keep_only_readable_items() {
        use crate::role::Role;
        let pool = pool();
        let out = pool
            .get_message_by_name("steward.tracking.v1.SearchRunsResponse")
            .unwrap();
        let resp = steward_proto::tracking::SearchRunsResponse {
            runs: ["e1", "e2", "e1"]
                .iter()
                .enumerate()
                .map(|(i, e)| steward_proto::tracking::Run {
                    name: format!("experiments/{e}/runs/r{i}"),
                    ..Default::default()
                })
                .collect(),
            next_page_token: "tok".into(),
        };
        let p = Principal {
            name: "bob".into(),
            key: String::new(),
            service: false,
            grants: HashMap::from([("experiments/e1".to_owned(), Role::Viewer)]),
        };
        let bytes = Bytes::from(prost::Message::encode_to_vec(&resp));
        let kept = keep_readable(out, "runs", &p, bytes).unwrap();
        let kept: steward_proto::tracking::SearchRunsResponse =
            prost::Message::decode(kept).unwrap();
        let names: Vec<_> = kept.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["experiments/e1/runs/r0", "experiments/e1/runs/r2"]);
        assert_eq!(kept.next_page_token, "tok");
    }
}
