//! Registered models: create, get, list with filters, update with etags, delete.

use steward_proto::registry as pb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

fn create(name: &str, tags: &[(&str, &str)]) -> pb::CreateRegisteredModelRequest {
    pb::CreateRegisteredModelRequest {
        registered_model: Some(pb::RegisteredModel {
            name: name.into(),
            description: "fraud scoring".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn create_get_update_and_delete_a_model() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let name = format!("fraud-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let m = h
            .reg
            .create_registered_model(create(&name, &[("team", "risk")]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.name, format!("registeredModels/{name}"), "{l}");
        assert_eq!(m.creator, "alice");
        assert_eq!(m.etag, "1");
        assert!(m.latest_version.is_none());
        // Unique names.
        let e = h
            .reg
            .create_registered_model(create(&name, &[]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists, "{l}");
        // Get by full name.
        let got = h
            .reg
            .get_registered_model(pb::GetRegisteredModelRequest {
                name: m.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.tags["team"], "risk");
        // Update with a stale etag is ABORTED and changes nothing; with the right one it works.
        let mut upd = m.clone();
        upd.description = "v2".into();
        upd.etag = "7".into();
        let req = |u: pb::RegisteredModel| pb::UpdateRegisteredModelRequest {
            registered_model: Some(u),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            request_id: String::new(),
        };
        assert_eq!(
            h.reg
                .update_registered_model(req(upd.clone()))
                .await
                .unwrap_err()
                .code(),
            Code::Aborted
        );
        upd.etag = "1".into();
        let u = h
            .reg
            .update_registered_model(req(upd))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((u.description.as_str(), u.etag.as_str()), ("v2", "2"));
        // Delete, then it is gone.
        h.reg
            .delete_registered_model(pb::DeleteRegisteredModelRequest {
                name: m.name.clone(),
                etag: "2".into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let e = h
            .reg
            .get_registered_model(pb::GetRegisteredModelRequest {
                name: m.name.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::NotFound, "MODEL_NOT_FOUND")
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_model_input_names_the_field_and_writes_nothing() {
    for mut h in harness::all().await {
        for bad in [
            "",
            "a/b",
            "x@y",
            "../etc",
            "has space",
            "nul\0byte",
            &"n".repeat(129),
            "registeredModels/",
        ] {
            let e = h
                .reg
                .create_registered_model(create(bad, &[]))
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("registered_model.name"));
        }
        let e = h
            .reg
            .create_registered_model(create("ok-name-tags", &[("", "v")]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = h
            .reg
            .get_registered_model(pb::GetRegisteredModelRequest {
                name: "models/x".into(),
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("name"));
        let all = h
            .reg
            .list_registered_models(pb::ListRegisteredModelsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(
            all.registered_models.is_empty(),
            "{}: nothing written",
            h.label
        );
        let e = h
            .reg
            .list_registered_models(pb::ListRegisteredModelsRequest {
                filter: "name = ".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("filter"));
        let e = h
            .reg
            .list_registered_models(pb::ListRegisteredModelsRequest {
                filter: "metrics.auc > 1".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("filter"));
        h.stop().await;
    }
}

#[tokio::test]
async fn list_filters_on_name_tags_and_latest_version_and_pages() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        for (n, team) in [
            ("churn-a", "growth"),
            ("fraud-a", "risk"),
            ("fraud-b", "risk"),
            ("fraud-c", "risk"),
        ] {
            h.reg
                .create_registered_model(create(n, &[("team", team)]))
                .await
                .unwrap();
        }
        let run = h.trained_run(0.9, "0.1").await;
        h.version_from("registeredModels/fraud-b", &run).await;
        let list = |filter: &str, page_size: i32, token: String| pb::ListRegisteredModelsRequest {
            filter: filter.into(),
            page_size,
            page_token: token,
            ..Default::default()
        };
        let names = |r: &pb::ListRegisteredModelsResponse| {
            r.registered_models
                .iter()
                .map(|m| m.name.trim_start_matches("registeredModels/").to_string())
                .collect::<Vec<_>>()
        };
        let r = h
            .reg
            .list_registered_models(list(
                "name LIKE 'fraud-%' AND tags.team = 'risk'",
                0,
                String::new(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(names(&r), ["fraud-a", "fraud-b", "fraud-c"], "{l}");
        let r = h
            .reg
            .list_registered_models(list("latest_version.status = 'READY'", 0, String::new()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(names(&r), ["fraud-b"], "{l}");
        assert_eq!(
            r.registered_models[0]
                .latest_version
                .as_ref()
                .unwrap()
                .version,
            1
        );
        let r = h
            .reg
            .list_registered_models(list(
                "latest_version.version IS NULL AND tags.team = 'risk'",
                0,
                String::new(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(names(&r), ["fraud-a", "fraud-c"], "{l}");
        // Pages: no duplicates, no gaps; a token is bound to its query.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let r = h
                .reg
                .list_registered_models(list("", 3, token))
                .await
                .unwrap()
                .into_inner();
            seen.extend(names(&r));
            if r.next_page_token.is_empty() {
                break;
            }
            let e = h
                .reg
                .list_registered_models(list("name = 'x'", 3, r.next_page_token.clone()))
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("page_token"));
            token = r.next_page_token;
        }
        assert_eq!(seen, ["churn-a", "fraud-a", "fraud-b", "fraud-c"], "{l}");
        h.stop().await;
    }
}

#[tokio::test]
async fn a_retried_create_returns_the_original() {
    for mut h in harness::all().await {
        let mut req = create("retry-me", &[]);
        req.request_id = "req-1".into();
        let a = h
            .reg
            .create_registered_model(req.clone())
            .await
            .unwrap()
            .into_inner();
        let b = h
            .reg
            .create_registered_model(req.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a, b, "{}", h.label);
        req.registered_model.as_mut().unwrap().description = "different".into();
        let e = h.reg.create_registered_model(req).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        h.stop().await;
    }
}
