//! ONNX models run in process with tract (pure Rust, no native runtime).
//!
//! [`OnnxModel::load`] parses and optimizes a model once; [`OnnxModel::run`] then takes no lock:
//! each call spawns its own execution state over the shared, immutable plan, so one loaded
//! model serves any number of concurrent requests. `run` is CPU-bound; call it from
//! `tokio::task::spawn_blocking` (or a dedicated pool) for anything but tiny batches.
//!
//! The model is read from bytes only: ONNX external-data references are refused (tract needs a
//! model directory for them and none is given), so a model file can never make the service
//! read another file.

mod convert;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use steward_common::Error;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::{
    Framework as _, InferenceFact, InferenceModelExt as _, IntoRunnable as _, TDim, TValue, TVec,
    TractError, TypedRunnableModel,
};
use tract_onnx::tract_hir::infer::Factoid as _;

use self::convert::{Dim, dim_of, from_tvalue, meta_dim, supported, to_tvalue};
use super::tensor::{DataType, Tensor, fmt_shape};

/// Longest error cause (from tract) passed on to the caller, in bytes.
const MAX_CAUSE_LEN: usize = 300;

/// Name, element type and shape of a model input or output (`-1` for dynamic dimensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMeta {
    /// The tensor's name in the model.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Dimensions; `-1` where the model leaves the size open (e.g. the batch).
    pub shape: Vec<i64>,
}

impl fmt::Display for TensorMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({} {})",
            self.name,
            self.datatype,
            fmt_shape(&self.shape)
        )
    }
}

struct Inner {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<TensorMeta>,
    input_dims: Vec<Vec<Dim>>,
    outputs: Vec<TensorMeta>,
}

/// A loaded, optimized ONNX model. Cloning is cheap (one reference count) and clones share the
/// plan; it is `Send + Sync`.
#[derive(Clone)]
pub struct OnnxModel {
    inner: Arc<Inner>,
}

impl fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnnxModel")
            .field("inputs", &self.inner.inputs)
            .field("outputs", &self.inner.outputs)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Parses, type-checks and optimizes the ONNX model in `bytes`. Declared dimensions that are
    /// named (`batch`) stay symbolic; unnamed unknown dimensions get a fresh symbol each.
    ///
    /// # Errors
    /// `FAILED_PRECONDITION` with reason `INVALID_MODEL` when the bytes are not a model tract can
    /// load (corrupt, not ONNX, unsupported operator, external data), `UNSUPPORTED_MODEL` when
    /// an input or output has an element type Steward does not serve (FP16, strings, ...).
    pub fn load(bytes: &[u8]) -> Result<Self, Error> {
        guard(|| Self::load_unguarded(bytes)).unwrap_or_else(|panic| {
            Err(Error::failed_precondition(
                "INVALID_MODEL",
                format!("the model is malformed: {}", shorten(panic)),
            ))
        })
    }

    fn load_unguarded(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = bytes;
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut reader)
            .map_err(|e| invalid_model("is not a valid ONNX model", &e))?;
        check_outputs_exist(&proto)?;
        let mut model = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| invalid_model("is not a valid ONNX model", &e))?;

        let mut inputs = Vec::new();
        let mut input_dims = Vec::new();
        for ix in 0..model.inputs.len() {
            let outlet = model.inputs[ix];
            let name = model.node(outlet.node).name.clone();
            let fact = model
                .input_fact(ix)
                .map_err(|e| invalid_model("has an unreadable input", &e))?
                .clone();
            let dt = fact.datum_type.concretize().ok_or_else(|| {
                Error::failed_precondition(
                    "UNSUPPORTED_MODEL",
                    format!("model input {name:?} declares no element type"),
                )
            })?;
            let datatype = supported(dt, "input", &name)?;
            if fact.shape.is_open() {
                return Err(Error::failed_precondition(
                    "UNSUPPORTED_MODEL",
                    format!("model input {name:?} declares no rank (number of dimensions)"),
                ));
            }
            let dims: TVec<TDim> = fact
                .shape
                .dims()
                .map(|d| {
                    d.concretize()
                        .unwrap_or_else(|| TDim::Sym(model.symbols.new_with_prefix("unk")))
                })
                .collect();
            input_dims.push(dims.iter().map(dim_of).collect());
            let shape = dims.iter().map(meta_dim).collect();
            model
                .set_input_fact(ix, InferenceFact::dt_shape(dt, dims))
                .map_err(|e| invalid_model("has an unusable input", &e))?;
            inputs.push(TensorMeta {
                name,
                datatype,
                shape,
            });
        }
        let output_names: Vec<String> = model
            .outputs
            .iter()
            .map(|&o| {
                model
                    .outlet_label(o)
                    .map_or_else(|| model.node(o.node).name.clone(), str::to_owned)
            })
            .collect();

        let typed = model
            .into_optimized()
            .map_err(|e| invalid_model("cannot be prepared to run", &e))?;
        let mut outputs = Vec::with_capacity(output_names.len());
        for (ix, name) in output_names.into_iter().enumerate() {
            let fact = typed
                .output_fact(ix)
                .map_err(|e| invalid_model("has an unreadable output", &e))?;
            outputs.push(TensorMeta {
                datatype: supported(fact.datum_type, "output", &name)?,
                shape: fact.shape.iter().map(meta_dim).collect(),
                name,
            });
        }
        let plan = typed
            .into_runnable()
            .map_err(|e| invalid_model("cannot be prepared to run", &e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                plan,
                inputs,
                input_dims,
                outputs,
            }),
        })
    }

    /// The inputs the model declares, in model order.
    pub fn inputs(&self) -> &[TensorMeta] {
        &self.inner.inputs
    }

    /// The outputs the model produces, in model order.
    pub fn outputs(&self) -> &[TensorMeta] {
        &self.inner.outputs
    }

    /// Runs the model. `inputs` are matched to the model's inputs by name (any order); the
    /// outputs come back in model order, named as in the model. Errors name the offending
    /// input by its position in `inputs`, e.g. `inputs[1].datatype`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a missing, unknown or repeated input, a wrong datatype or shape
    /// (reason `MODEL_EXECUTION_FAILED` when tract rejects the values at run time, e.g. an index
    /// out of range); `INTERNAL` if the model produces something it did not declare.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        let inner = &*self.inner;
        let n = inner.inputs.len();
        let mut targets = Vec::with_capacity(inputs.len());
        let mut given = vec![false; n];
        let mut symbols: HashMap<&str, (usize, usize)> = HashMap::new();
        for (i, t) in inputs.iter().enumerate() {
            let Some(ix) = inner.inputs.iter().position(|m| m.name == t.name()) else {
                return Err(Error::invalid_field(
                    format!("inputs[{i}].name"),
                    format!(
                        "the model has no input {:?}; its inputs are {}",
                        t.name(),
                        list(&inner.inputs)
                    ),
                ));
            };
            if given[ix] {
                return Err(Error::invalid_field(
                    format!("inputs[{i}].name"),
                    format!("input {:?} is given more than once", t.name()),
                ));
            }
            let meta = &inner.inputs[ix];
            if t.datatype() != meta.datatype {
                return Err(Error::invalid_field(
                    format!("inputs[{i}].datatype"),
                    format!("input {meta} needs {}, got {}", meta.datatype, t.datatype()),
                ));
            }
            check_shape(i, t, meta, &inner.input_dims[ix], &mut symbols)?;
            given[ix] = true;
            targets.push(ix);
        }
        if let Some(ix) = given.iter().position(|g| !g) {
            return Err(Error::invalid_field(
                "inputs",
                format!("missing input {}", inner.inputs[ix]),
            ));
        }
        let mut slots: Vec<Option<TValue>> = (0..n).map(|_| None).collect();
        for (t, ix) in inputs.into_iter().zip(targets) {
            slots[ix] = Some(to_tvalue(t)?);
        }
        let values: TVec<TValue> = slots.into_iter().flatten().collect();
        let plan = &inner.plan;
        let outputs = guard(|| plan.run(values))
            .map_err(|panic| Error::internal(format!("tract panicked running a model: {panic}")))?
            .map_err(|e| {
                let cause = cause(&e);
                tracing::warn!(error = %cause, "model execution failed");
                let mut err = Error::invalid_field(
                    "inputs",
                    format!("the model could not run on these inputs: {cause}"),
                );
                err.reason = "MODEL_EXECUTION_FAILED";
                err
            })?;
        outputs
            .into_iter()
            .zip(&inner.outputs)
            .map(|(v, meta)| from_tvalue(&v, meta))
            .collect()
    }
}

/// Refuses a graph whose outputs name tensors nothing produces (tract's parser would panic on
/// it rather than return an error).
fn check_outputs_exist(proto: &ModelProto) -> Result<(), Error> {
    let Some(graph) = &proto.graph else {
        return Ok(()); // tract reports the missing graph itself
    };
    let known: HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    match graph
        .output
        .iter()
        .find(|o| !known.contains(o.name.as_str()))
    {
        Some(o) => Err(Error::failed_precondition(
            "INVALID_MODEL",
            format!(
                "the model is malformed: graph output {:?} is produced by no node",
                o.name
            ),
        )),
        None => Ok(()),
    }
}

fn check_shape<'a>(
    i: usize,
    t: &Tensor,
    meta: &TensorMeta,
    dims: &'a [Dim],
    symbols: &mut HashMap<&'a str, (usize, usize)>,
) -> Result<(), Error> {
    let field = format!("inputs[{i}].shape");
    let got = t.shape();
    let wrong = || {
        Error::invalid_field(
            field.clone(),
            format!("input {meta} got shape {}", fmt_shape(&t.shape_i64())),
        )
    };
    if got.len() != dims.len() {
        return Err(wrong());
    }
    for (axis, (dim, &n)) in dims.iter().zip(got).enumerate() {
        match dim {
            Dim::Fixed(want) if *want != n => return Err(wrong()),
            Dim::Symbol(s) => match symbols.get(s.as_str()) {
                Some(&(seen, at)) if seen != n => {
                    return Err(Error::invalid_field(
                        field,
                        format!(
                            "dimension {axis} ({s}) is {n} here but {seen} in inputs[{at}]; \
                             all inputs must agree"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    symbols.insert(s, (n, i));
                }
            },
            Dim::Fixed(_) | Dim::Other => {}
        }
    }
    Ok(())
}

fn list(metas: &[TensorMeta]) -> String {
    metas
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid_model(what: &str, e: &TractError) -> Error {
    Error::failed_precondition("INVALID_MODEL", format!("the model {what}: {}", cause(e)))
}

/// Runs `f`, turning a panic into `Err(message)`. tract reports bad models through errors, but
/// some malformed files still reach a panic in its parser (a graph output that names no tensor,
/// now refused up front by `check_outputs_exist`, or a raw STRING initializer that hits an
/// `unimplemented!`: see the tests), so every call into tract is guarded. Nothing shared is left
/// half-updated by such a panic: loading builds a fresh model and each run has its own state.
/// The default panic hook still prints the panic to stderr.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned())
    })
}

/// The error chain, one line, cut to [`MAX_CAUSE_LEN`] bytes on a character boundary.
fn cause(e: &TractError) -> String {
    shorten(format!("{e:#}"))
}

fn shorten(s: String) -> String {
    let mut s = s.replace('\n', " ");
    if s.len() > MAX_CAUSE_LEN {
        let mut end = MAX_CAUSE_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
