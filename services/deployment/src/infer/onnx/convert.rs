//! Conversions between Steward tensors and tract values, and tract's types to protocol types.

use steward_common::Error;
use tract_onnx::prelude::{
    DatumType, IntoTValue as _, IntoTensor as _, TDim, TValue, TractError, tract_ndarray,
};

use super::TensorMeta;
use crate::infer::tensor::{DataType, Tensor, TensorData};

/// One dimension of a declared input, for validating requests.
#[derive(Debug, Clone)]
pub(super) enum Dim {
    /// Must be exactly this size.
    Fixed(usize),
    /// A named symbol (e.g. `batch`): any size, the same wherever the symbol appears.
    Symbol(String),
    /// An expression of symbols: checked by tract at run time.
    Other,
}

pub(super) fn dim_of(d: &TDim) -> Dim {
    match d {
        TDim::Val(v) => usize::try_from(*v).map_or(Dim::Other, Dim::Fixed),
        TDim::Sym(s) => Dim::Symbol(s.to_string()),
        _ => Dim::Other,
    }
}

pub(super) fn meta_dim(d: &TDim) -> i64 {
    d.as_i64().filter(|v| *v >= 0).unwrap_or(-1)
}

pub(super) fn supported(dt: DatumType, what: &str, name: &str) -> Result<DataType, Error> {
    Ok(match dt {
        DatumType::Bool => DataType::Bool,
        DatumType::U8 => DataType::Uint8,
        DatumType::U16 => DataType::Uint16,
        DatumType::U32 => DataType::Uint32,
        DatumType::U64 => DataType::Uint64,
        DatumType::I8 => DataType::Int8,
        DatumType::I16 => DataType::Int16,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::F32 => DataType::Fp32,
        DatumType::F64 => DataType::Fp64,
        other => {
            return Err(Error::failed_precondition(
                "UNSUPPORTED_MODEL",
                format!(
                    "model {what} {name:?} has element type {other:?}, which Steward does not serve"
                ),
            ));
        }
    })
}

pub(super) fn to_tvalue(t: Tensor) -> Result<TValue, Error> {
    let (_, shape, data) = t.into_parts();
    let shape = tract_ndarray::IxDyn(&shape);
    macro_rules! arr {
        ($v:expr) => {
            tract_ndarray::ArrayD::from_shape_vec(shape, $v)
                .map(|a| a.into_tensor().into_tvalue())
                .map_err(Error::internal)
        };
    }
    match data {
        TensorData::Bool(v) => arr!(v),
        TensorData::Uint8(v) => arr!(v),
        TensorData::Uint16(v) => arr!(v),
        TensorData::Uint32(v) => arr!(v),
        TensorData::Uint64(v) => arr!(v),
        TensorData::Int8(v) => arr!(v),
        TensorData::Int16(v) => arr!(v),
        TensorData::Int32(v) => arr!(v),
        TensorData::Int64(v) => arr!(v),
        TensorData::Fp32(v) => arr!(v),
        TensorData::Fp64(v) => arr!(v),
    }
}

pub(super) fn from_tvalue(v: &TValue, meta: &TensorMeta) -> Result<Tensor, Error> {
    let fault = |e: TractError| Error::internal(format!("output {}: {e:#}", meta.name));
    let view = v.try_as_plain_ram().map_err(fault)?;
    macro_rules! vec_of {
        ($t:ty) => {
            view.as_slice::<$t>().map_err(fault)?.to_vec()
        };
    }
    let data = match v.datum_type() {
        DatumType::Bool => TensorData::Bool(vec_of!(bool)),
        DatumType::U8 => TensorData::Uint8(vec_of!(u8)),
        DatumType::U16 => TensorData::Uint16(vec_of!(u16)),
        DatumType::U32 => TensorData::Uint32(vec_of!(u32)),
        DatumType::U64 => TensorData::Uint64(vec_of!(u64)),
        DatumType::I8 => TensorData::Int8(vec_of!(i8)),
        DatumType::I16 => TensorData::Int16(vec_of!(i16)),
        DatumType::I32 => TensorData::Int32(vec_of!(i32)),
        DatumType::I64 => TensorData::Int64(vec_of!(i64)),
        DatumType::F32 => TensorData::Fp32(vec_of!(f32)),
        DatumType::F64 => TensorData::Fp64(vec_of!(f64)),
        other => {
            return Err(Error::internal(format!(
                "output {} has undeclared type {other:?}",
                meta.name
            )));
        }
    };
    // Only limits can fail here (a tract tensor's shape always matches its data).
    Tensor::new(meta.name.clone(), v.shape().to_vec(), data).map_err(|e| {
        Error::limit(
            "outputs",
            format!("model output {:?}: {}", meta.name, e.message),
        )
    })
}
