//! Serving predictions (Open Inference Protocol ModelInfer): route by the split, run ONNX
//! versions in process (tract) or forward other formats upstream, call the shadow on the side,
//! and record every prediction before answering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use steward_common::Error;
use steward_proto::inference as oip;
use tokio::sync::OnceCell;

use super::decisions::Written;
use super::route::Routed;
use super::{Ctx, Deployments};
use crate::domain::{Decision, Variant};
use crate::infer::onnx::OnnxModel;
use crate::infer::tensor::{self, Tensor};
use crate::infer::upstream::Upstream;
use crate::store::environments;

type ModelCell = Arc<OnceCell<OnnxModel>>;

/// Loaded models kept per process before idle ones are dropped.
pub const MAX_LOADED_MODELS: usize = 32;

/// Loaded models and upstream clients, shared by requests.
#[derive(Default)]
pub struct Engines {
    models: Mutex<HashMap<(String, i64), ModelCell>>,
    upstreams: Mutex<HashMap<String, Upstream>>,
}

/// The answer of one prediction.
#[derive(Debug, Clone)]
pub struct Served {
    /// Request id.
    pub request_id: String,
    /// Routing outcome.
    pub routed: Routed,
    /// Outputs.
    pub outputs: Vec<Tensor>,
}

fn sampled(rate: f64, request_id: &str) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    // Deterministic per request id, so a retry samples the same way.
    let b = crate::domain::routing::bucket("sample", request_id);
    f64::from(b) < rate * 10_000.0
}

impl Deployments {
    async fn onnx(&self, model: &str, v: &Variant) -> Result<OnnxModel, Error> {
        let cell = {
            let mut m = self
                .engines
                .models
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if m.len() >= MAX_LOADED_MODELS && !m.contains_key(&(model.to_string(), v.version)) {
                // Drop the models no request is using right now (they reload on demand).
                m.retain(|_, cell| Arc::strong_count(cell) > 1);
            }
            m.entry((model.to_string(), v.version)).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            if v.source_run.is_empty() {
                return Err(Error::failed_precondition(
                    "MODEL_NOT_SERVABLE",
                    format!("registeredModels/{model}/versions/{} has no run artifacts to load; set an upstream_url", v.version),
                ));
            }
            let bytes = self.peers.onnx_bytes(&v.source_run, &v.artifact_path).await?;
            tokio::task::spawn_blocking(move || OnnxModel::load(&bytes))
                .await
                .map_err(|e| Error::internal(format!("model load task: {e}")))?
        })
        .await
        .cloned()
    }

    async fn upstream(&self, environment: &str, v: &Variant) -> Result<Upstream, Error> {
        let url = if v.upstream_url.is_empty() {
            environments::get_one(self.db.conn(), environment)
                .await?
                .map(|e| e.upstream_url)
                .unwrap_or_default()
        } else {
            v.upstream_url.clone()
        };
        if url.is_empty() {
            return Err(Error::failed_precondition(
                "NO_UPSTREAM",
                format!(
                    "variant {:?} is {}; set an upstream_url on it or on environments/{environment}",
                    v.name, v.format
                ),
            ));
        }
        if let Some(u) = self
            .engines
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&url)
        {
            return Ok(u.clone());
        }
        let u = Upstream::connect(&url).await?;
        self.engines
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url, u.clone());
        Ok(u)
    }

    /// Runs `v` on `inputs`.
    async fn run_variant(
        &self,
        r: &Routed,
        v: &Variant,
        inputs: Vec<Tensor>,
        req: &oip::ModelInferRequest,
    ) -> Result<Vec<Tensor>, Error> {
        if v.format == "onnx" {
            let m = self.onnx(&r.deployment.model, v).await?;
            tokio::task::spawn_blocking(move || m.run(inputs))
                .await
                .map_err(|e| Error::internal(format!("inference task: {e}")))?
        } else {
            let up = self.upstream(&r.deployment.environment, v).await?;
            let mut fwd = req.clone();
            fwd.model_name = r.deployment.model.clone();
            fwd.model_version = v.version.to_string();
            let resp = up.infer(fwd).await?;
            tensor::from_response(&resp)
        }
    }

    /// Metadata (inputs/outputs) of the deployment's first ONNX variant.
    pub async fn model_metadata(
        &self,
        deployment: &str,
    ) -> Result<(Routed, Option<OnnxModel>), Error> {
        let r = self.pick(deployment, "", "metadata").await?;
        let m = if r.variant.format == "onnx" {
            Some(self.onnx(&r.deployment.model, &r.variant.clone()).await?)
        } else {
            None
        };
        Ok((r, m))
    }

    /// ModelInfer on deployment `req.model_name`.
    pub async fn infer(&self, ctx: &Ctx, req: oip::ModelInferRequest) -> Result<Served, Error> {
        let started = Instant::now();
        let inputs = tensor::from_request(&req)?;
        let request_id = if req.id.is_empty() {
            uuid::Uuid::now_v7().simple().to_string()
        } else {
            req.id.clone()
        };
        let routing_key = match req
            .parameters
            .get("routing_key")
            .and_then(|p| p.parameter_choice.as_ref())
        {
            Some(oip::infer_parameter::ParameterChoice::StringParam(s)) => s.clone(),
            Some(_) => {
                return Err(Error::invalid_field(
                    "parameters[\"routing_key\"]",
                    "must be a string",
                ));
            }
            None => String::new(),
        };
        let mut routed = self
            .pick(&req.model_name, &routing_key, &request_id)
            .await?;
        if !req.model_version.is_empty() {
            let cur = self.current(&req.model_name).await?;
            let v = cur
                .1
                .variants
                .iter()
                .find(|v| v.version.to_string() == req.model_version && v.weight_bp > 0)
                .cloned()
                .ok_or_else(|| {
                    Error::invalid_field(
                        "model_version",
                        format!(
                            "{:?} is not a version served by deployments/{}",
                            req.model_version, req.model_name
                        ),
                    )
                })?;
            routed.variant = v;
        }
        let digest = tensor::canonical_digest(&inputs);
        // Every decision's inputs ride on the event for monitoring; only a sample is stored.
        let event_inputs_json = tensor::to_json(&inputs).to_string();
        let inputs_json = sampled(self.settings.input_sample_rate, &request_id)
            .then(|| event_inputs_json.clone());
        if let Some(shadow) = routed.shadow.clone() {
            let this = self.clone();
            let (r, inputs, req, id, key, ctx) = (
                routed.clone(),
                inputs.clone(),
                req.clone(),
                request_id.clone(),
                routing_key.clone(),
                ctx.clone(),
            );
            tokio::spawn(async move {
                this.shadow(&ctx, &r, &shadow, inputs, &req, &id, &key)
                    .await;
            });
        }
        let variant = routed.variant.clone();
        let result = self
            .run_variant(&routed, &variant, inputs, &req)
            .await
            .and_then(|o| tensor::select_outputs(o, &req.outputs));
        let d = Decision {
            request_id: request_id.clone(),
            time: steward_common::time::now_ms(),
            deployment: req.model_name.clone(),
            revision: routed.revision,
            variant: variant.name.clone(),
            model: routed.deployment.model.clone(),
            version: variant.version,
            kind: "infer".into(),
            input_digest: digest,
            inputs_json,
            inputs_erased: false,
            event_inputs_json,
            outputs_json: result
                .as_ref()
                .map(|o| tensor::to_json(o).to_string())
                .unwrap_or_default(),
            latency_us: started.elapsed().as_micros() as i64,
            error: result
                .as_ref()
                .err()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            routing_key,
        };
        // Durable before the answer (also for a failed prediction: guardrails count errors).
        let written = self.writer.record(d, ctx.traceparent.clone()).await?;
        let outputs = result?;
        if written == Written::Exists {
            tracing::debug!(
                request_id,
                "ModelInfer retried with a recorded request id; not recorded again"
            );
        }
        Ok(Served {
            request_id,
            routed,
            outputs,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn shadow(
        &self,
        ctx: &Ctx,
        r: &Routed,
        v: &Variant,
        inputs: Vec<Tensor>,
        req: &oip::ModelInferRequest,
        id: &str,
        key: &str,
    ) {
        let started = Instant::now();
        let digest = tensor::canonical_digest(&inputs);
        let result = self.run_variant(r, v, inputs, req).await;
        let d = Decision {
            request_id: format!("{id}:shadow"),
            time: steward_common::time::now_ms(),
            deployment: r.deployment.id.clone(),
            revision: r.revision,
            variant: v.name.clone(),
            model: r.deployment.model.clone(),
            version: v.version,
            kind: "shadow".into(),
            input_digest: digest,
            inputs_json: None,
            inputs_erased: false,
            event_inputs_json: String::new(),
            outputs_json: result
                .as_ref()
                .map(|o| tensor::to_json(o).to_string())
                .unwrap_or_default(),
            latency_us: started.elapsed().as_micros() as i64,
            error: result
                .as_ref()
                .err()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            routing_key: key.to_string(),
        };
        if let Err(e) = self.writer.record(d, ctx.traceparent.clone()).await {
            tracing::warn!(error = %e, request_id = id, "shadow decision not recorded");
        }
    }
}
