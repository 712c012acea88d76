//! Tensors: the validated, typed form of Open Inference Protocol inputs and outputs.
//!
//! Wire tensors (`inference.ModelInferRequest.inputs`, typed `contents` or
//! `raw_input_contents`) are checked once, at the boundary, by [`from_request`] (or
//! [`from_response`] for an upstream server's answer): known datatype, shape within
//! [`MAX_DIMS`] and [`MAX_ELEMENTS`], element count equal to the shape's product, unique names.
//! Nothing is allocated from a declared shape before it has been checked against the data that
//! actually arrived, so a hostile shape costs nothing.
//!
//! FP16 and BYTES are refused with a clear error: the typed protocol has no FP16 field and no
//! shipped runtime path needs strings yet.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use std::fmt;

use steward_common::Error;

pub use decode::{from_request, from_response, select_outputs};
pub use encode::{
    canonical_digest, to_input_tensors, to_json, to_output_tensors, to_raw_output_tensors,
};

/// Most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;
/// Most elements in one request or response, summed over all its tensors (16 Mi).
pub const MAX_ELEMENTS: usize = 16 << 20;
/// Most tensors in one request or response.
pub const MAX_TENSORS: usize = 128;
/// Longest tensor name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Element types Steward accepts (Open Inference Protocol `datatype` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOL`, one byte (0 or 1) in raw form.
    Bool,
    /// `UINT8`.
    Uint8,
    /// `UINT16`.
    Uint16,
    /// `UINT32`.
    Uint32,
    /// `UINT64`.
    Uint64,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
}

impl DataType {
    /// Every supported type, in protocol order.
    pub const ALL: [DataType; 11] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp32,
        DataType::Fp64,
    ];

    /// The protocol name, e.g. `FP32`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
        }
    }

    /// The type named `name` (exact, upper case as the protocol spells it).
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Bytes per element in the raw (little-endian) encoding.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The elements of a tensor, row-major, one variant per [`DataType`].
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `BOOL` elements.
    Bool(Vec<bool>),
    /// `UINT8` elements.
    Uint8(Vec<u8>),
    /// `UINT16` elements.
    Uint16(Vec<u16>),
    /// `UINT32` elements.
    Uint32(Vec<u32>),
    /// `UINT64` elements.
    Uint64(Vec<u64>),
    /// `INT8` elements.
    Int8(Vec<i8>),
    /// `INT16` elements.
    Int16(Vec<i16>),
    /// `INT32` elements.
    Int32(Vec<i32>),
    /// `INT64` elements.
    Int64(Vec<i64>),
    /// `FP32` elements.
    Fp32(Vec<f32>),
    /// `FP64` elements.
    Fp64(Vec<f64>),
}

/// Evaluates `$body` with `$v` bound to the vector inside any [`TensorData`] variant.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::Uint8($v) => $body,
            TensorData::Uint16($v) => $body,
            TensorData::Uint32($v) => $body,
            TensorData::Uint64($v) => $body,
            TensorData::Int8($v) => $body,
            TensorData::Int16($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Fp32($v) => $body,
            TensorData::Fp64($v) => $body,
        }
    };
}
use with_data;

impl TensorData {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named tensor whose shape always matches its data (checked on construction).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor named `name` of `shape` holding `data` (row-major).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` on `shape` when it has more than [`MAX_DIMS`] dimensions, more than
    /// [`MAX_ELEMENTS`] elements, or a product different from `data.len()`; on `name` when the
    /// name is empty or longer than [`MAX_NAME_LEN`].
    pub fn new(
        name: impl Into<String>,
        shape: Vec<usize>,
        data: TensorData,
    ) -> Result<Self, Error> {
        let name = name.into();
        check_name(&name, "name")?;
        let dims: Vec<i64> = shape
            .iter()
            .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
            .collect();
        let count = element_count(&dims, "shape")?;
        if count != data.len() {
            return Err(Error::invalid_field(
                "shape",
                format!(
                    "shape {shape:?} needs {count} elements but the data has {}",
                    data.len()
                ),
            ));
        }
        Ok(Self { name, shape, data })
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The dimensions as the protocol spells them (`int64`).
    pub fn shape_i64(&self) -> Vec<i64> {
        // Every dimension is at most MAX_ELEMENTS, so the cast is exact.
        self.shape.iter().map(|&d| d as i64).collect()
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The element type.
    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Name, shape and data, by value.
    pub fn into_parts(self) -> (String, Vec<usize>, TensorData) {
        (self.name, self.shape, self.data)
    }
}

/// Checks a tensor name; errors name `field`.
fn check_name(name: &str, field: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::limit(
            field,
            format!(
                "is {} bytes long; at most {MAX_NAME_LEN} allowed",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// The number of elements of `shape`, checked: at most [`MAX_DIMS`] dimensions, none negative
/// or above [`MAX_ELEMENTS`], product at most [`MAX_ELEMENTS`]. Errors name `field`.
fn element_count(shape: &[i64], field: &str) -> Result<usize, Error> {
    if shape.len() > MAX_DIMS {
        return Err(Error::limit(
            field,
            format!("has {} dimensions; at most {MAX_DIMS} allowed", shape.len()),
        ));
    }
    let mut dims = Vec::with_capacity(shape.len());
    for (i, &d) in shape.iter().enumerate() {
        let d = usize::try_from(d).map_err(|_| {
            Error::invalid_field(field, format!("dimension {i} is {d}; must be 0 or more"))
        })?;
        if d > MAX_ELEMENTS {
            return Err(too_many(field, shape));
        }
        dims.push(d);
    }
    if dims.contains(&0) {
        return Ok(0);
    }
    let mut count: usize = 1;
    for d in dims {
        count = count
            .checked_mul(d)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| too_many(field, shape))?;
    }
    Ok(count)
}

fn too_many(field: &str, shape: &[i64]) -> Error {
    Error::limit(
        field,
        format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"),
    )
}

/// Formats a shape for messages, `-1` for dynamic dimensions.
pub(crate) fn fmt_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(", "))
}
