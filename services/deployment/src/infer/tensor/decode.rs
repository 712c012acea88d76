//! Wire tensors (typed `contents` or raw little-endian bytes) -> validated [`Tensor`]s.

use std::collections::HashSet;

use bytes::Bytes;
use steward_common::Error;
use steward_proto::inference::model_infer_request::InferRequestedOutputTensor;
use steward_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};

use super::{
    DataType, MAX_ELEMENTS, MAX_TENSORS, Tensor, TensorData, check_name, element_count, fmt_shape,
};

/// The parts of a wire tensor that decoding reads (inputs and outputs share them).
struct Wire<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: &'a [i64],
    contents: Option<&'a InferTensorContents>,
}

/// The request's input tensors, validated. Errors name the field, e.g. `inputs[0].shape`,
/// `inputs[1].contents` or `raw_input_contents[1]`.
///
/// # Errors
/// `INVALID_ARGUMENT` (reason `LIMIT_EXCEEDED` for limits) for any malformed input.
pub fn from_request(req: &ModelInferRequest) -> Result<Vec<Tensor>, Error> {
    let wires = req.inputs.iter().map(|t| Wire {
        name: &t.name,
        datatype: &t.datatype,
        shape: &t.shape,
        contents: t.contents.as_ref(),
    });
    decode_all(
        "inputs",
        "raw_input_contents",
        wires,
        &req.raw_input_contents,
    )
}

/// The response's output tensors, validated as strictly as inputs (for answers from an
/// upstream server). Errors name `outputs[i]...` or `raw_output_contents[i]`.
///
/// # Errors
/// `INVALID_ARGUMENT` for any malformed output.
pub fn from_response(resp: &ModelInferResponse) -> Result<Vec<Tensor>, Error> {
    let wires = resp.outputs.iter().map(|t| Wire {
        name: &t.name,
        datatype: &t.datatype,
        shape: &t.shape,
        contents: t.contents.as_ref(),
    });
    decode_all(
        "outputs",
        "raw_output_contents",
        wires,
        &resp.raw_output_contents,
    )
}

/// The outputs the request asked for (`ModelInferRequest.outputs`), in the order asked; all of
/// them when it asked for none.
///
/// # Errors
/// `INVALID_ARGUMENT` on `outputs[i].name` for a name the model does not produce or one asked
/// for twice.
pub fn select_outputs(
    outputs: Vec<Tensor>,
    requested: &[InferRequestedOutputTensor],
) -> Result<Vec<Tensor>, Error> {
    if requested.is_empty() {
        return Ok(outputs);
    }
    let mut slots: Vec<Option<Tensor>> = outputs.into_iter().map(Some).collect();
    let mut selected = Vec::with_capacity(requested.len());
    for (i, r) in requested.iter().enumerate() {
        let field = format!("outputs[{i}].name");
        let Some(ix) = slots
            .iter()
            .position(|t| t.as_ref().is_some_and(|t| t.name() == r.name))
        else {
            let known: Vec<&str> = slots.iter().flatten().map(Tensor::name).collect();
            let msg = if requested[..i].iter().any(|p| p.name == r.name) {
                format!("output {:?} is requested twice", r.name)
            } else {
                format!("the model has no output {:?}", r.name)
            };
            return Err(Error::invalid_field(
                field,
                format!("{msg}; available: {}", known.join(", ")),
            ));
        };
        selected.extend(slots[ix].take());
    }
    Ok(selected)
}

fn decode_all<'a>(
    kind: &str,
    raw_field: &str,
    wires: impl ExactSizeIterator<Item = Wire<'a>>,
    raw: &[Bytes],
) -> Result<Vec<Tensor>, Error> {
    let n = wires.len();
    if n > MAX_TENSORS {
        return Err(Error::limit(
            kind,
            format!("has {n} tensors; at most {MAX_TENSORS} allowed"),
        ));
    }
    if !raw.is_empty() && raw.len() != n {
        return Err(Error::invalid_field(
            raw_field,
            format!(
                "has {} entries but there are {n} {kind}; send one per tensor, in order",
                raw.len()
            ),
        ));
    }
    // Pass 1: names, datatypes and shapes (cheap; nothing is allocated from a shape).
    let wires: Vec<Wire<'a>> = wires.collect();
    let mut names = HashSet::with_capacity(n);
    let mut total: usize = 0;
    let mut checked = Vec::with_capacity(n);
    for (i, w) in wires.iter().enumerate() {
        let at = format!("{kind}[{i}]");
        check_name(w.name, &format!("{at}.name"))?;
        if !names.insert(w.name) {
            return Err(Error::invalid_field(
                format!("{at}.name"),
                format!(
                    "{:?} appears more than once; tensor names must be unique",
                    w.name
                ),
            ));
        }
        let dt = parse_datatype(w.datatype, &format!("{at}.datatype"))?;
        let count = element_count(w.shape, &format!("{at}.shape"))?;
        total = total
            .checked_add(count)
            .filter(|&t| t <= MAX_ELEMENTS)
            .ok_or_else(|| {
                Error::limit(
                    kind,
                    format!("together hold more than {MAX_ELEMENTS} elements"),
                )
            })?;
        checked.push((dt, count));
    }
    // Pass 2: the data, checked against the shapes before it is converted.
    let mut tensors = Vec::with_capacity(n);
    for (i, (w, (dt, count))) in wires.into_iter().zip(checked).enumerate() {
        let contents = w.contents.filter(|c| !contents_empty(c));
        let data = match (raw.get(i), contents) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_field(
                    format!("{kind}[{i}].contents"),
                    format!("must be empty when {raw_field} is used; send one or the other"),
                ));
            }
            (Some(bytes), None) => {
                decode_raw(dt, bytes, count, w.shape, &format!("{raw_field}[{i}]"))?
            }
            (None, c) => decode_typed(dt, c, count, w.shape, &format!("{kind}[{i}].contents"))?,
        };
        tensors.push(Tensor {
            name: w.name.to_owned(),
            // Checked non-negative and at most MAX_ELEMENTS by element_count.
            shape: w.shape.iter().map(|&d| d as usize).collect(),
            data,
        });
    }
    Ok(tensors)
}

fn parse_datatype(name: &str, field: &str) -> Result<DataType, Error> {
    DataType::parse(name).ok_or_else(|| {
        let why = match name {
            "FP16" | "BF16" => format!("{name} is not supported; send FP32"),
            "BYTES" => "BYTES (string) tensors are not supported".to_owned(),
            "" => "must not be empty".to_owned(),
            _ => format!("unknown datatype {name:?}"),
        };
        let all: Vec<&str> = DataType::ALL.iter().map(|d| d.as_str()).collect();
        Error::invalid_field(field, format!("{why}; use one of {}", all.join(", ")))
    })
}

fn contents_empty(c: &InferTensorContents) -> bool {
    typed_fields(c).iter().all(|(_, len)| *len == 0)
}

fn typed_fields(c: &InferTensorContents) -> [(&'static str, usize); 8] {
    [
        ("bool_contents", c.bool_contents.len()),
        ("int_contents", c.int_contents.len()),
        ("int64_contents", c.int64_contents.len()),
        ("uint_contents", c.uint_contents.len()),
        ("uint64_contents", c.uint64_contents.len()),
        ("fp32_contents", c.fp32_contents.len()),
        ("fp64_contents", c.fp64_contents.len()),
        ("bytes_contents", c.bytes_contents.len()),
    ]
}

/// The typed field that carries `dt`.
pub(super) fn typed_field(dt: DataType) -> &'static str {
    match dt {
        DataType::Bool => "bool_contents",
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => "uint_contents",
        DataType::Uint64 => "uint64_contents",
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "int_contents",
        DataType::Int64 => "int64_contents",
        DataType::Fp32 => "fp32_contents",
        DataType::Fp64 => "fp64_contents",
    }
}

fn decode_typed(
    dt: DataType,
    contents: Option<&InferTensorContents>,
    count: usize,
    shape: &[i64],
    field: &str,
) -> Result<TensorData, Error> {
    let empty = InferTensorContents::default();
    let c = contents.unwrap_or(&empty);
    let want = typed_field(dt);
    for (name, len) in typed_fields(c) {
        if name != want && len > 0 {
            return Err(Error::invalid_field(
                field,
                format!("{name} is set but the datatype is {dt}; put the values in {want}"),
            ));
        }
    }
    let have = typed_fields(c)
        .iter()
        .find(|(name, _)| *name == want)
        .map_or(0, |(_, len)| *len);
    if have != count {
        return Err(Error::invalid_field(
            field,
            format!(
                "{want} has {have} values but {dt} {} needs {count}",
                fmt_shape(shape)
            ),
        ));
    }
    Ok(match dt {
        DataType::Bool => TensorData::Bool(c.bool_contents.clone()),
        DataType::Uint8 => TensorData::Uint8(narrow(&c.uint_contents, dt, field)?),
        DataType::Uint16 => TensorData::Uint16(narrow(&c.uint_contents, dt, field)?),
        DataType::Uint32 => TensorData::Uint32(c.uint_contents.clone()),
        DataType::Uint64 => TensorData::Uint64(c.uint64_contents.clone()),
        DataType::Int8 => TensorData::Int8(narrow(&c.int_contents, dt, field)?),
        DataType::Int16 => TensorData::Int16(narrow(&c.int_contents, dt, field)?),
        DataType::Int32 => TensorData::Int32(c.int_contents.clone()),
        DataType::Int64 => TensorData::Int64(c.int64_contents.clone()),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents.clone()),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents.clone()),
    })
}

/// Narrows 32-bit protocol values to a smaller element type, rejecting values out of range.
fn narrow<S, T>(values: &[S], dt: DataType, field: &str) -> Result<Vec<T>, Error>
where
    S: Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            T::try_from(v).map_err(|_| {
                Error::invalid_field(
                    field,
                    format!("value {v} at index {i} is out of range for {dt}"),
                )
            })
        })
        .collect()
}

fn decode_raw(
    dt: DataType,
    bytes: &[u8],
    count: usize,
    shape: &[i64],
    field: &str,
) -> Result<TensorData, Error> {
    // count <= MAX_ELEMENTS and size <= 8, so this cannot overflow.
    let want = count * dt.size();
    if bytes.len() != want {
        return Err(Error::invalid_field(
            field,
            format!(
                "has {} bytes but {dt} {} needs {want} ({count} elements of {} bytes)",
                bytes.len(),
                fmt_shape(shape),
                dt.size()
            ),
        ));
    }
    Ok(match dt {
        DataType::Bool => {
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(Error::invalid_field(
                    field,
                    format!("byte {i} is {}; BOOL elements must be 0 or 1", bytes[i]),
                ));
            }
            TensorData::Bool(bytes.iter().map(|&b| b == 1).collect())
        }
        DataType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DataType::Uint16 => TensorData::Uint16(le(bytes, u16::from_le_bytes)),
        DataType::Uint32 => TensorData::Uint32(le(bytes, u32::from_le_bytes)),
        DataType::Uint64 => TensorData::Uint64(le(bytes, u64::from_le_bytes)),
        DataType::Int8 => TensorData::Int8(le(bytes, i8::from_le_bytes)),
        DataType::Int16 => TensorData::Int16(le(bytes, i16::from_le_bytes)),
        DataType::Int32 => TensorData::Int32(le(bytes, i32::from_le_bytes)),
        DataType::Int64 => TensorData::Int64(le(bytes, i64::from_le_bytes)),
        DataType::Fp32 => TensorData::Fp32(le(bytes, f32::from_le_bytes)),
        DataType::Fp64 => TensorData::Fp64(le(bytes, f64::from_le_bytes)),
    })
}

/// Decodes little-endian `N`-byte elements (the length was checked by the caller; a trailing
/// partial element, which cannot occur, would be ignored).
fn le<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    let (chunks, _) = bytes.as_chunks::<N>();
    chunks.iter().map(|c| f(*c)).collect()
}
