//! The other service this one calls: tracking (dataset profiles for baselines).

use steward_common::Error;
use steward_grpc::TracedChannel;
use steward_proto::tracking as tpb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;

/// The peers, over lazily connected channels.
#[derive(Clone, Default)]
pub struct Peers {
    tracking: Option<TrackingServiceClient<TracedChannel>>,
}

impl Peers {
    /// A channel to tracking (None: profile baselines are refused).
    pub async fn connect(tracking_url: Option<&str>) -> Result<Self, Error> {
        let tracking = match tracking_url {
            Some(u) => Some(
                TrackingServiceClient::new(
                    steward_grpc::connect_traced(u)
                        .await
                        .map_err(|e| e.prefixed("tracking_url"))?,
                )
                .max_decoding_message_size(64 << 20),
            ),
            None => None,
        };
        Ok(Self { tracking })
    }

    /// The profile of dataset `dataset` logged as an input of `run`.
    pub async fn dataset_profile(&self, run: &str, dataset: &str) -> Result<tpb::Dataset, Error> {
        let Some(t) = &self.tracking else {
            return Err(Error::failed_precondition(
                "TRACKING_NOT_CONFIGURED",
                "profile baselines need the tracking service (STEWARD_TRACKING_URL)",
            ));
        };
        let r = t
            .clone()
            .get_run(tpb::GetRunRequest {
                name: run.to_string(),
            })
            .await
            .map_err(|s| {
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) {
                    steward_grpc::from_status(&s)
                        .with_violation("profile.run", s.message().to_string())
                } else {
                    steward_grpc::from_peer_status(
                        &s,
                        "PEER_UNAVAILABLE",
                        "the tracking service is unavailable; retry later",
                    )
                }
            })?
            .into_inner();
        r.inputs
            .into_iter()
            .filter_map(|i| i.dataset)
            .find(|d| d.name == dataset)
            .ok_or_else(|| {
                Error::not_found(
                    "DATASET_NOT_FOUND",
                    format!("{run} has no input dataset {dataset:?}"),
                )
                .with_violation("profile.dataset", "not an input of the run")
            })
    }
}
