//! [`Tensor`]s -> wire tensors, the canonical digest and JSON.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use steward_proto::inference::InferTensorContents;
use steward_proto::inference::model_infer_request::InferInputTensor;
use steward_proto::inference::model_infer_response::InferOutputTensor;

use super::{Tensor, TensorData, with_data};

/// Version tag that starts the canonical encoding; bump it if the encoding ever changes.
const DIGEST_TAG: &[u8] = b"steward.tensors.v1\n";

/// Output tensors with typed `contents` (UINT8/UINT16 widen into `uint_contents`, INT8/INT16
/// into `int_contents`, as the protocol specifies).
pub fn to_output_tensors(tensors: Vec<Tensor>) -> Vec<InferOutputTensor> {
    tensors
        .into_iter()
        .map(|t| {
            let (datatype, shape) = (t.datatype().as_str().to_owned(), t.shape_i64());
            InferOutputTensor {
                name: t.name,
                datatype,
                shape,
                parameters: HashMap::new(),
                contents: Some(contents(t.data)),
            }
        })
        .collect()
}

/// Output tensors without `contents` plus their little-endian bytes, one entry per tensor, for
/// `ModelInferResponse.raw_output_contents` (what clients that sent raw inputs expect).
pub fn to_raw_output_tensors(tensors: &[Tensor]) -> (Vec<InferOutputTensor>, Vec<Bytes>) {
    tensors
        .iter()
        .map(|t| {
            let meta = InferOutputTensor {
                name: t.name.clone(),
                datatype: t.datatype().as_str().to_owned(),
                shape: t.shape_i64(),
                parameters: HashMap::new(),
                contents: None,
            };
            let mut raw = Vec::with_capacity(t.len() * t.datatype().size());
            write_le(&t.data, |chunk| raw.extend_from_slice(chunk));
            (meta, Bytes::from(raw))
        })
        .unzip()
}

/// Input tensors with typed `contents`, for building requests (clients, tests, forwarding).
pub fn to_input_tensors(tensors: &[Tensor]) -> Vec<InferInputTensor> {
    tensors
        .iter()
        .map(|t| InferInputTensor {
            name: t.name.clone(),
            datatype: t.datatype().as_str().to_owned(),
            shape: t.shape_i64(),
            parameters: HashMap::new(),
            contents: Some(contents(t.data.clone())),
        })
        .collect()
}

fn contents(data: TensorData) -> InferTensorContents {
    let mut c = InferTensorContents::default();
    match data {
        TensorData::Bool(v) => c.bool_contents = v,
        TensorData::Uint8(v) => c.uint_contents = v.into_iter().map(u32::from).collect(),
        TensorData::Uint16(v) => c.uint_contents = v.into_iter().map(u32::from).collect(),
        TensorData::Uint32(v) => c.uint_contents = v,
        TensorData::Uint64(v) => c.uint64_contents = v,
        TensorData::Int8(v) => c.int_contents = v.into_iter().map(i32::from).collect(),
        TensorData::Int16(v) => c.int_contents = v.into_iter().map(i32::from).collect(),
        TensorData::Int32(v) => c.int_contents = v,
        TensorData::Int64(v) => c.int64_contents = v,
        TensorData::Fp32(v) => c.fp32_contents = v,
        TensorData::Fp64(v) => c.fp64_contents = v,
    }
    c
}

/// Hex SHA-256 of the canonical encoding of `tensors`, independent of their order: sorted by
/// name, each contributes its name, datatype, shape and little-endian data, every variable
/// part length-prefixed (u64 LE) after the tag `steward.tensors.v1`. Floats are hashed by bit
/// pattern, so `-0.0` and `0.0` (or two NaN payloads) differ.
pub fn canonical_digest(tensors: &[Tensor]) -> String {
    let mut sorted: Vec<&Tensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    h.update(DIGEST_TAG);
    h.update((sorted.len() as u64).to_le_bytes());
    for t in sorted {
        for part in [t.name.as_bytes(), t.datatype().as_str().as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update((t.shape.len() as u64).to_le_bytes());
        for &d in &t.shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update(((t.len() * t.datatype().size()) as u64).to_le_bytes());
        write_le(&t.data, |chunk| h.update(chunk));
    }
    hex::encode(h.finalize())
}

/// The tensors as JSON in the protocol's REST form:
/// `[{"name", "datatype", "shape", "data": [...]}]` with flat row-major data. Non-finite floats
/// (NaN, infinities) become `null`, as JSON has no spelling for them.
pub fn to_json(tensors: &[Tensor]) -> Value {
    Value::Array(
        tensors
            .iter()
            .map(|t| {
                let data: Vec<Value> = match &t.data {
                    // FP32 goes through its shortest decimal form, so 0.1f32 prints as 0.1.
                    TensorData::Fp32(v) => v
                        .iter()
                        .map(|x| {
                            x.to_string()
                                .parse::<f64>()
                                .map_or(Value::Null, Value::from)
                        })
                        .collect(),
                    other => with_data!(other, v => v.iter().map(|&x| Value::from(x)).collect()),
                };
                json!({
                    "name": t.name,
                    "datatype": t.datatype().as_str(),
                    "shape": t.shape,
                    "data": data,
                })
            })
            .collect(),
    )
}

/// Feeds the little-endian bytes of `data` to `sink` in chunks (no whole-tensor copy).
fn write_le(data: &TensorData, mut sink: impl FnMut(&[u8])) {
    const CHUNK: usize = 8192;
    let mut buf = Vec::with_capacity(CHUNK * 8);
    macro_rules! emit {
        ($v:expr, $f:expr) => {
            for chunk in $v.chunks(CHUNK) {
                buf.clear();
                for &x in chunk {
                    buf.extend_from_slice(&$f(x));
                }
                sink(&buf);
            }
        };
    }
    match data {
        TensorData::Bool(v) => emit!(v, |x: bool| [u8::from(x)]),
        TensorData::Uint8(v) => sink(v),
        TensorData::Uint16(v) => emit!(v, u16::to_le_bytes),
        TensorData::Uint32(v) => emit!(v, u32::to_le_bytes),
        TensorData::Uint64(v) => emit!(v, u64::to_le_bytes),
        TensorData::Int8(v) => emit!(v, i8::to_le_bytes),
        TensorData::Int16(v) => emit!(v, i16::to_le_bytes),
        TensorData::Int32(v) => emit!(v, i32::to_le_bytes),
        TensorData::Int64(v) => emit!(v, i64::to_le_bytes),
        TensorData::Fp32(v) => emit!(v, f32::to_le_bytes),
        TensorData::Fp64(v) => emit!(v, f64::to_le_bytes),
    }
}
