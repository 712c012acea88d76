//! Authentication and authorization against `steward up`: the first admin bootstrapped offline
//! with `steward keys create`, keys and grants through the AuthService, per-resource roles,
//! lists that hide what the caller may not read, revocation and expiry, the audit actor, the
//! loopback-open rule, and TLS with and without client certificates. On SQLite, and on
//! PostgreSQL too when the real-backend tier is on.

use std::path::Path;
use std::time::{Duration, Instant};

use steward_proto::audit as apb;
use steward_proto::audit::audit_service_client::AuditServiceClient;
use steward_proto::auth as kpb;
use steward_proto::auth::auth_service_client::AuthServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use steward_storage::testing::TestDb;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::binaries;
use crate::support::process::{Proc, command};
use crate::support::server::{Server, free_addr};
use crate::support::tracking::unique;

/// Adds a bearer key (and, to show it is ignored, a forged actor) to every call.
#[derive(Clone)]
struct Key(Option<String>);

impl tonic::service::Interceptor for Key {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(k) = &self.0 {
            req.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(format!("Bearer {k}")).unwrap(),
            );
        }
        req.metadata_mut().insert(
            "x-steward-actor",
            MetadataValue::from_static("forged-admin"),
        );
        Ok(req)
    }
}

type Ch = InterceptedService<Channel, Key>;

fn tracking(s: &Server, key: Option<&str>) -> TrackingServiceClient<Ch> {
    TrackingServiceClient::with_interceptor(s.channel(), Key(key.map(str::to_owned)))
}
fn registry(s: &Server, key: Option<&str>) -> RegistryServiceClient<Ch> {
    RegistryServiceClient::with_interceptor(s.channel(), Key(key.map(str::to_owned)))
}
fn auth(s: &Server, key: Option<&str>) -> AuthServiceClient<Ch> {
    AuthServiceClient::with_interceptor(s.channel(), Key(key.map(str::to_owned)))
}
fn audit(s: &Server, key: Option<&str>) -> AuditServiceClient<Ch> {
    AuditServiceClient::with_interceptor(s.channel(), Key(key.map(str::to_owned)))
}

/// Creates the registered model `name`.
async fn create_model<T>(c: &mut RegistryServiceClient<T>, name: &str)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    c.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: name.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap_or_else(|s| panic!("CreateRegisteredModel {name}: {s:?}"));
}

/// Uploads `model/model.bin` to `run`.
async fn upload_model<T>(c: &mut TrackingServiceClient<T>, run: &str)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let parts = vec![
        pb::UploadArtifactRequest {
            part: Some(pb::upload_artifact_request::Part::Header(
                pb::ArtifactHeader {
                    run: run.into(),
                    path: "model/model.bin".into(),
                    ..Default::default()
                },
            )),
        },
        pb::UploadArtifactRequest {
            part: Some(pb::upload_artifact_request::Part::Chunk(
                bytes::Bytes::from_static(b"weights"),
            )),
        },
    ];
    c.upload_artifact(tokio_stream::iter(parts))
        .await
        .expect("upload model/model.bin");
}

/// `steward keys create ...` against the database of `data_dir` (and `env`); the printed key.
async fn bootstrap_key(data_dir: &Path, env: &[(&str, String)], args: &[&str]) -> String {
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(["keys", "create"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = Proc::run("steward keys create", cmd, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("shown only now"), "{}", out.describe());
    let key = out.stdout.trim().to_owned();
    assert!(key.starts_with("stw_"), "{}", out.describe());
    key
}

fn code<T: std::fmt::Debug>(what: &str, r: Result<T, Status>, want: Code) -> Status {
    match r {
        Ok(v) => panic!("{what}: expected {want:?}, got {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), want, "{what}: {s:?}");
            s
        }
    }
}

fn names_field(s: &Status, field: &str) {
    let named = tonic_types::StatusExt::get_details_bad_request(s)
        .is_some_and(|b| b.field_violations.iter().any(|v| v.field == field));
    assert!(named, "the error does not name {field}: {s:?}");
}

async fn new_key(
    admin: &mut AuthServiceClient<Ch>,
    principal: &str,
    expire: Option<i64>,
) -> String {
    admin
        .create_api_key(kpb::CreateApiKeyRequest {
            principal: principal.into(),
            kind: kpb::KeyKind::User as i32,
            expire_time: expire.map(steward_grpc::ts),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("CreateApiKey {principal}: {s:?}"))
        .into_inner()
        .secret
}

async fn grant(admin: &mut AuthServiceClient<Ch>, principal: &str, role: &str, resource: &str) {
    admin
        .create_grant(kpb::CreateGrantRequest {
            grant: Some(kpb::Grant {
                principal: principal.into(),
                role: role.into(),
                resource: resource.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("CreateGrant {principal} {role} {resource}: {s:?}"));
}

async fn create_experiment(
    c: &mut TrackingServiceClient<Ch>,
    name: &str,
) -> Result<pb::Experiment, Status> {
    c.create_experiment(pb::CreateExperimentRequest {
        experiment: Some(pb::Experiment {
            display_name: name.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn create_run(c: &mut TrackingServiceClient<Ch>, exp: &str) -> Result<pb::Run, Status> {
    c.create_run(pb::CreateRunRequest {
        parent: exp.into(),
        run: Some(pb::Run::default()),
        request_id: String::new(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn experiment_names(c: &mut TrackingServiceClient<Ch>) -> Vec<String> {
    let mut names: Vec<String> = c
        .list_experiments(pb::ListExperimentsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("ListExperiments")
        .into_inner()
        .experiments
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// Polls `call` until it fails with UNAUTHENTICATED (keys are cached for up to 5 s).
async fn until_unauthenticated<F, Fut>(what: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match call().await {
            Err(s) if s.code() == Code::Unauthenticated => return,
            other => assert!(
                Instant::now() < deadline,
                "{what}: still {other:?} after 15 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn keys_and_roles(env: Vec<(&'static str, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let admin_key = bootstrap_key(dir.path(), &env, &["--role", "admin"]).await;
    let mut all_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all_env.push(("STEWARD_AUTH", "required"));
    let server = Server::steward_up(dir.path(), &all_env).await;
    let admin = Some(admin_key.as_str());

    // Without a key (or with a bad one) nothing but health answers.
    let none = code(
        "no key",
        tracking(&server, None)
            .list_experiments(pb::ListExperimentsRequest::default())
            .await,
        Code::Unauthenticated,
    );
    assert!(none.message().contains("Bearer"), "{none:?}");
    let fake = format!("stw_0123456789abcdef_{}", "A".repeat(43));
    for bad in [
        "not-a-key",
        fake.as_str(),
        &admin_key[..admin_key.len() - 1],
    ] {
        code(
            "bad key",
            tracking(&server, Some(bad))
                .list_experiments(pb::ListExperimentsRequest::default())
                .await,
            Code::Unauthenticated,
        );
    }
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            server.channel(),
        );
    let refl = reflection
        .server_reflection_info(tokio_stream::iter([tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        }]))
        .await;
    code(
        "reflection without a key",
        refl.map(|_| ()),
        Code::Unauthenticated,
    );

    // The admin sets up two experiments, people and grants.
    let mut t_admin = tracking(&server, admin);
    let e1 = create_experiment(&mut t_admin, &unique("auth-e1"))
        .await
        .unwrap()
        .name;
    let e2 = create_experiment(&mut t_admin, &unique("auth-e2"))
        .await
        .unwrap()
        .name;
    let e2_run = create_run(&mut t_admin, &e2).await.unwrap().name;
    let mut a = auth(&server, admin);
    let bob = new_key(&mut a, "bob", None).await;
    let carol = new_key(&mut a, "carol", None).await;
    let rita = new_key(&mut a, "rita", None).await;
    grant(&mut a, "bob", "editor", &e1).await;
    grant(&mut a, "carol", "viewer", "*").await;
    grant(&mut a, "bob", "editor", "registeredModels/m1").await;
    grant(&mut a, "rita", "reviewer", "registeredModels/m1").await;

    // bob: editor of e1 only; the actor he forges is ignored.
    let mut t_bob = tracking(&server, Some(&bob));
    let run = create_run(&mut t_bob, &e1).await.expect("bob writes to e1");
    code(
        "bob writes to e2",
        create_run(&mut t_bob, &e2).await,
        Code::PermissionDenied,
    );
    code(
        "bob reads e2",
        t_bob
            .get_experiment(pb::GetExperimentRequest {
                name: e2.clone(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    code(
        "bob reads a run of e2",
        t_bob
            .get_run(pb::GetRunRequest {
                name: e2_run.clone(),
            })
            .await,
        Code::PermissionDenied,
    );
    code(
        "bob creates an experiment",
        create_experiment(&mut t_bob, &unique("bob")).await,
        Code::PermissionDenied,
    );
    assert_eq!(
        experiment_names(&mut t_bob).await,
        vec![e1.clone()],
        "bob lists only e1"
    );
    let runs: Vec<String> = t_bob
        .search_runs(pb::SearchRunsRequest {
            experiments: vec![e1.clone(), e2.clone()],
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(runs, vec![run.name.clone()], "bob searches only e1's runs");
    let who = auth(&server, Some(&bob))
        .who_am_i(kpb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.principal, "bob");
    assert!(!who.open_mode);
    assert!(
        who.grants
            .iter()
            .any(|g| g.resource == e1 && g.role == "editor"),
        "{who:?}"
    );
    code(
        "bob manages keys",
        auth(&server, Some(&bob))
            .list_api_keys(kpb::ListApiKeysRequest::default())
            .await,
        Code::PermissionDenied,
    );

    // A model version is made from a run the caller must be able to read: bob may write to m1
    // but not use e2's run; from e1's run it works (the registry reads the run with the
    // process's own credentials, which a required-auth server accepts only from itself).
    for r in [&run.name, &e2_run] {
        upload_model(&mut t_admin, r).await;
    }
    create_model(&mut registry(&server, admin), "registeredModels/m1").await;
    let from_run = |r: String| {
        let mut c = registry(&server, Some(&bob));
        async move {
            c.create_model_version(rpb::CreateModelVersionRequest {
                parent: "registeredModels/m1".into(),
                model_version: Some(rpb::ModelVersion {
                    source_run: r,
                    artifact_path: "model".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map(|v| v.into_inner())
        }
    };
    let denied = code(
        "bob registers e2's run",
        from_run(e2_run.clone()).await,
        Code::PermissionDenied,
    );
    assert!(denied.message().contains("experiments/"), "{denied:?}");
    let v = from_run(run.name.clone())
        .await
        .expect("bob registers his own run");
    assert_eq!(v.creator, "bob", "{v:?}");

    // carol: global viewer.
    let mut t_carol = tracking(&server, Some(&carol));
    let mut both = vec![e1.clone(), e2.clone()];
    both.sort();
    assert_eq!(experiment_names(&mut t_carol).await, both);
    code(
        "carol writes",
        create_run(&mut t_carol, &e1).await,
        Code::PermissionDenied,
    );
    code(
        "carol reads the audit log",
        audit(&server, Some(&carol))
            .list_audit_events(apb::ListAuditEventsRequest::default())
            .await,
        Code::PermissionDenied,
    );

    // Approval needs the reviewer role: bob (editor of m1, creator of version 1) is refused;
    // rita (reviewer of m1) approves it.
    let review = |key: &str| {
        let mut c = registry(&server, Some(key));
        async move {
            c.review_model_version(rpb::ReviewModelVersionRequest {
                name: "registeredModels/m1/versions/1".into(),
                decision: rpb::ApprovalState::Approved as i32,
                ..Default::default()
            })
            .await
            .map(|_| ())
        }
    };
    code("bob approves", review(&bob).await, Code::PermissionDenied);
    review(&rita)
        .await
        .expect("a reviewer who did not create the version approves it");

    // Bad grants and keys name the field and store nothing.
    let before = a
        .list_grants(kpb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    for (principal, role, resource, field) in [
        ("dave", "root", "*", "grant.role"),
        ("dave", "viewer", "experiments/x/runs/y", "grant.resource"),
        ("dave", "viewer", "monitors/m", "grant.resource"),
        ("da ve", "viewer", "*", "grant.principal"),
    ] {
        let s = code(
            "bad grant",
            a.create_grant(kpb::CreateGrantRequest {
                grant: Some(kpb::Grant {
                    principal: principal.into(),
                    role: role.into(),
                    resource: resource.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
            Code::InvalidArgument,
        );
        names_field(&s, field);
    }
    let past = steward_common::time::now_ms() - 1000;
    for (req, field) in [
        (
            kpb::CreateApiKeyRequest {
                principal: String::new(),
                ..Default::default()
            },
            "principal",
        ),
        (
            kpb::CreateApiKeyRequest {
                principal: "dave".into(),
                expire_time: Some(steward_grpc::ts(past)),
                ..Default::default()
            },
            "expire_time",
        ),
        (
            kpb::CreateApiKeyRequest {
                principal: "dave".into(),
                role: "boss".into(),
                ..Default::default()
            },
            "role",
        ),
    ] {
        let s = code(
            "bad key request",
            a.create_api_key(req).await,
            Code::InvalidArgument,
        );
        names_field(&s, field);
    }
    let after = a
        .list_grants(kpb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert_eq!(after, before, "refused requests wrote nothing");
    let keys = a
        .list_api_keys(kpb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(keys.iter().all(|k| k.principal != "dave"), "{keys:?}");

    // Audit records name the authenticated principal, never the forged header.
    let events = audit(&server, admin)
        .list_audit_events(apb::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let actor_of = |resource: &str, action: &str| {
        events
            .iter()
            .find(|e| e.resource == resource && e.action == action)
            .map(|e| e.actor.clone())
            .unwrap_or_else(|| panic!("no {action} on {resource} in {events:#?}"))
    };
    assert_eq!(actor_of(&e1, "tracking.experiments.create"), "admin");
    assert_eq!(actor_of(&run.name, "tracking.runs.create"), "bob");
    assert!(events.iter().all(|e| e.actor != "forged-admin"));
    assert!(
        events
            .iter()
            .any(|e| e.action == "auth.keys.create" && e.actor.starts_with("steward-cli:")),
        "the bootstrap key is audited as the CLI user"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "auth.grants.create" && e.actor == "admin")
    );
    assert!(
        !serde_json::to_string(&events.iter().map(|e| &e.after_json).collect::<Vec<_>>())
            .unwrap()
            .contains(&bob[21..]),
        "no audit record holds a key's secret"
    );

    // Revoked and expired keys stop working (within the 5 s key cache).
    let bob_name = who.key.clone();
    a.revoke_api_key(kpb::RevokeApiKeyRequest {
        name: bob_name,
        request_id: String::new(),
    })
    .await
    .unwrap();
    until_unauthenticated("revoked key", || {
        let mut c = tracking(&server, Some(&bob));
        async move {
            c.list_experiments(pb::ListExperimentsRequest::default())
                .await
                .map(|_| ())
        }
    })
    .await;
    let short = new_key(&mut a, "erin", Some(steward_common::time::now_ms() + 2_000)).await;
    grant(&mut a, "erin", "viewer", "*").await;
    tracking(&server, Some(&short))
        .list_experiments(pb::ListExperimentsRequest::default())
        .await
        .expect("a key works until it expires");
    until_unauthenticated("expired key", || {
        let mut c = tracking(&server, Some(&short));
        async move {
            c.list_experiments(pb::ListExperimentsRequest::default())
                .await
                .map(|_| ())
        }
    })
    .await;
    // carol still gets in: revocation is per key.
    experiment_names(&mut t_carol).await;
}

/// Keys, grants, roles, list filtering, revocation, expiry and audit actors, on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_grants_and_roles_on_sqlite() {
    keys_and_roles(Vec::new()).await;
}

/// The same on PostgreSQL (real-backend tier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_grants_and_roles_on_postgres() {
    let Some(db) = TestDb::postgres_with(false).await else {
        eprintln!("real-backend tier not asked for (set STEWARD_TEST_DATABASE_URL)");
        return;
    };
    keys_and_roles(vec![("STEWARD_DATABASE_URL", db.url.clone())]).await;
    db.cleanup().await;
}

/// `steward up` runs open on loopback only: on any other address every call but health needs
/// a key, unless auth is explicitly disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_runs_open() {
    let dir = tempfile::tempdir().unwrap();
    let open = Server::steward_up(dir.path(), &[]).await;
    let who = auth(&open, None)
        .who_am_i(kpb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(who.open_mode, "{who:?}");
    assert_eq!(
        who.principal, "forged-admin",
        "open mode takes the actor header"
    );
    drop(open);

    for (setting, want_open) in [(None, false), (Some("disabled"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_addr().port();
        let mut cmd = command(binaries::path(binaries::STEWARD));
        cmd.args(["up", "--listen", &format!("0.0.0.0:{port}"), "--data-dir"])
            .arg(dir.path());
        if let Some(s) = setting {
            cmd.env("STEWARD_AUTH", s);
        }
        let server = Server::start(
            "steward up (all addresses)",
            cmd,
            ([127, 0, 0, 1], port).into(),
        )
        .await;
        let r = tracking(&server, None)
            .list_experiments(pb::ListExperimentsRequest::default())
            .await;
        assert_eq!(r.is_ok(), want_open, "STEWARD_AUTH={setting:?}: {r:?}");
        if !want_open {
            assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);
        }
    }
}

/// Certificates for a test CA, a server (127.0.0.1, localhost) and a client, as PEM files.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, sans) in [
        ("server", vec!["127.0.0.1", "localhost"]),
        ("client", vec!["client"]),
    ] {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(sans.into_iter().map(String::from).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

async fn tls_channel(port: u16, dir: &Path, client_cert: bool) -> Result<Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(dir.join("ca.pem")).unwrap(),
        ))
        .domain_name("localhost");
    if client_cert {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(dir.join("client.pem")).unwrap(),
            std::fs::read(dir.join("client.key")).unwrap(),
        ));
    }
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10));
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    // A handshake the server refuses may only show on the first call.
    tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(channel)
}

/// TLS and mutual TLS on `steward up`: plain HTTP/2 is refused, TLS with the CA works, and with
/// a client CA set only clients with a certificate get in; the services inside call each other
/// over TLS with the server's certificate as their client identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let file = |n: &str| certs.path().join(n).display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let port = free_addr().port();
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("STEWARD_TLS_CERT", file("server.pem"))
        .env("STEWARD_TLS_KEY", file("server.key"))
        .env("STEWARD_TLS_CLIENT_CA", file("ca.pem"))
        .env("STEWARD_TLS_CA", file("ca.pem"));
    let _proc = Proc::spawn("steward up (mTLS)", cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    let channel = loop {
        match tls_channel(port, certs.path(), true).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "TLS server not up: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(
        tls_channel(port, certs.path(), false).await.is_err(),
        "a client without a certificate is refused"
    );
    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(ch) = plain {
        let r = tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        assert!(r.is_err(), "plain HTTP/2 answered: {r:?}");
    }
    // A registry call that the registry checks against tracking through its own client: the
    // in-process hop goes over mutual TLS too.
    let mut t = TrackingServiceClient::new(channel.clone());
    let exp = t
        .create_experiment(pb::CreateExperimentRequest {
            experiment: Some(pb::Experiment {
                display_name: unique("tls"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let run = t
        .create_run(pb::CreateRunRequest {
            parent: exp.name,
            run: Some(pb::Run::default()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    upload_model(&mut t, &run.name).await;
    let mut r = RegistryServiceClient::new(channel);
    create_model(&mut r, "registeredModels/tls-m").await;
    // The registry checks the run and its files through its own tracking client: that
    // in-process hop goes over mutual TLS too.
    let v = r
        .create_model_version(rpb::CreateModelVersionRequest {
            parent: "registeredModels/tls-m".into(),
            model_version: Some(rpb::ModelVersion {
                source_run: run.name.clone(),
                artifact_path: "model".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("the registry reached tracking over TLS")
        .into_inner();
    assert!(v.content_digest.starts_with("sha256:"), "{v:?}");
}

async fn start_service(bin: &str, env: &[(&str, String)]) -> Server {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = command(binaries::path(bin));
    cmd.args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    Server::start(bin, cmd, addr).await
}

async fn version_of(server: &Server, admin: &str, run: &str) -> Result<rpb::ModelVersion, Status> {
    registry(server, Some(admin))
        .create_model_version(rpb::CreateModelVersionRequest {
            parent: "registeredModels/svc-m".into(),
            model_version: Some(rpb::ModelVersion {
                source_run: run.into(),
                artifact_path: "model".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Separate processes with keys required: the registry reaches tracking with its own service
/// key (a `--service` viewer key); without one, tracking turns it away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_call_each_other_with_their_own_keys() {
    let Some(db) = TestDb::postgres_with(true).await else {
        eprintln!("distributed auth needs a shared database; set STEWARD_TEST_DATABASE_URL");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let db_env = vec![("STEWARD_DATABASE_URL", db.url.clone())];
    let admin = bootstrap_key(scratch.path(), &db_env, &["--role", "admin"]).await;
    let service = bootstrap_key(
        scratch.path(),
        &db_env,
        &[
            "--principal",
            "steward-registry",
            "--service",
            "--role",
            "viewer",
        ],
    )
    .await;
    let mut common = db_env.clone();
    common.push(("STEWARD_AUTH", "required".into()));
    common.push(("STEWARD_PAGE_TOKEN_KEY", "k".repeat(64)));
    let trk = start_service(binaries::STEWARD_TRACKING, &common).await;
    let mut with_key = common.clone();
    with_key.push(("STEWARD_TRACKING_URL", trk.url()));
    let without_key = with_key.clone();
    with_key.push(("STEWARD_SERVICE_TOKEN", service.clone()));
    let (reg, keyless) = tokio::join!(
        start_service(binaries::STEWARD_REGISTRY, &with_key),
        start_service(binaries::STEWARD_REGISTRY, &without_key),
    );

    let mut t = tracking(&trk, Some(&admin));
    let exp = create_experiment(&mut t, &unique("svc"))
        .await
        .unwrap()
        .name;
    let run = create_run(&mut t, &exp).await.unwrap().name;
    upload_model(&mut t, &run).await;
    create_model(&mut registry(&reg, Some(&admin)), "registeredModels/svc-m").await;
    let v = version_of(&reg, &admin, &run)
        .await
        .expect("the registry reads the run with its key");
    assert!(v.content_digest.starts_with("sha256:"), "{v:?}");
    let refused = version_of(&keyless, &admin, &run).await;
    assert!(
        refused.is_err(),
        "tracking answered a registry without a key: {refused:?}"
    );
    // The service key is read-only: it cannot write to tracking itself.
    code(
        "service key writes",
        create_experiment(&mut tracking(&trk, Some(&service)), &unique("svc")).await,
        Code::PermissionDenied,
    );
    drop((reg, keyless, trk));
    db.cleanup().await;
}
