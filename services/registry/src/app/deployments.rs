//! What the registry asks the deployment service: which deployments use a model or served a
//! version (for refusing deletes and for lineage).

use steward_common::Error;
use steward_grpc::TracedChannel;
use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;

/// The deployment service, if one is configured.
#[derive(Clone, Default)]
pub struct DeploymentPeer {
    client: Option<DeploymentServiceClient<TracedChannel>>,
}

impl DeploymentPeer {
    /// A peer at `url` (connects lazily); `None` means no deployment service is known.
    pub async fn connect(url: Option<&str>) -> Result<Self, Error> {
        Ok(Self {
            client: match url {
                Some(u) => Some(DeploymentServiceClient::new(
                    steward_grpc::connect_traced(u)
                        .await
                        .map_err(|e| e.prefixed("deployment_url"))?,
                )),
                None => None,
            },
        })
    }

    async fn list(&self, req: dpb::ListDeploymentsRequest) -> Result<Vec<String>, Error> {
        let Some(c) = &self.client else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut req = req;
        loop {
            let resp = c.clone().list_deployments(req.clone()).await.map_err(|s| {
                let e = steward_grpc::from_status(&s);
                if e.kind == steward_common::ErrorKind::Unimplemented
                    || s.code() == tonic::Code::Unavailable
                {
                    Error::unavailable(
                        "DEPLOYMENT_SERVICE_UNAVAILABLE",
                        "the deployment service is unavailable; retry later",
                    )
                } else {
                    e
                }
            })?;
            let resp = resp.into_inner();
            out.extend(resp.deployments.into_iter().map(|d| d.name));
            if resp.next_page_token.is_empty() {
                return Ok(out);
            }
            req.page_token = resp.next_page_token;
        }
    }

    /// Deployments of `model` (any environment).
    pub async fn of_model(&self, model: &str) -> Result<Vec<String>, Error> {
        self.list(dpb::ListDeploymentsRequest {
            registered_model: format!("registeredModels/{model}"),
            page_size: 1000,
            ..Default::default()
        })
        .await
    }

    /// Deployments whose revisions ever served `model` version `version`.
    pub async fn serving(&self, model: &str, version: i64) -> Result<Vec<String>, Error> {
        self.list(dpb::ListDeploymentsRequest {
            model_version: steward_common::names::version_name(model, version),
            page_size: 1000,
            ..Default::default()
        })
        .await
    }
}
