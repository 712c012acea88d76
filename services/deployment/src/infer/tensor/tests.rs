use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use steward_common::{Error, ErrorKind};
use steward_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use steward_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};

use super::*;

fn input(
    name: &str,
    datatype: &str,
    shape: &[i64],
    contents: Option<InferTensorContents>,
) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape: shape.to_vec(),
        contents,
        ..Default::default()
    }
}

fn fp32(values: &[f32]) -> Option<InferTensorContents> {
    Some(InferTensorContents {
        fp32_contents: values.to_vec(),
        ..Default::default()
    })
}

fn request(inputs: Vec<InferInputTensor>, raw: Vec<Vec<u8>>) -> ModelInferRequest {
    ModelInferRequest {
        inputs,
        raw_input_contents: raw.into_iter().map(Bytes::from).collect(),
        ..Default::default()
    }
}

#[track_caller]
fn rejects(req: &ModelInferRequest, field: &str, needle: &str) -> Error {
    let e = from_request(req).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert_eq!(e.violations[0].field, field, "{e}");
    assert!(e.message.contains(needle), "{e} lacks {needle:?}");
    e
}

fn t(name: &str, shape: Vec<usize>, data: TensorData) -> Tensor {
    Tensor::new(name, shape, data).unwrap()
}

#[test]
fn typed_and_raw_inputs_decode_to_the_same_tensor() {
    let values = [1.0f32, -2.5, 0.0, 3.25];
    let typed = request(vec![input("x", "FP32", &[2, 2], fp32(&values))], vec![]);
    let raw_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let raw = request(vec![input("x", "FP32", &[2, 2], None)], vec![raw_bytes]);
    let a = from_request(&typed).unwrap();
    let b = from_request(&raw).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].shape(), &[2, 2]);
    assert_eq!(a[0].data(), &TensorData::Fp32(values.to_vec()));
}

#[test]
fn every_datatype_round_trips_typed_and_raw() {
    let tensors = vec![
        t("b", vec![3], TensorData::Bool(vec![true, false, true])),
        t("u8", vec![2], TensorData::Uint8(vec![0, 255])),
        t("u16", vec![2], TensorData::Uint16(vec![1, 65535])),
        t("u32", vec![1], TensorData::Uint32(vec![u32::MAX])),
        t("u64", vec![1], TensorData::Uint64(vec![u64::MAX])),
        t("i8", vec![2], TensorData::Int8(vec![-128, 127])),
        t("i16", vec![2], TensorData::Int16(vec![-32768, 32767])),
        t("i32", vec![1], TensorData::Int32(vec![i32::MIN])),
        t("i64", vec![1, 1], TensorData::Int64(vec![i64::MIN])),
        t("f32", vec![2, 1], TensorData::Fp32(vec![0.1, f32::MAX])),
        t("f64", vec![0, 3], TensorData::Fp64(vec![])),
    ];
    // typed: request -> tensors
    let req = request(to_input_tensors(&tensors), vec![]);
    assert_eq!(from_request(&req).unwrap(), tensors);
    // typed outputs: tensors -> response -> tensors
    let resp = ModelInferResponse {
        outputs: to_output_tensors(tensors.clone()),
        ..Default::default()
    };
    assert_eq!(from_response(&resp).unwrap(), tensors);
    // raw outputs
    let (outputs, raw) = to_raw_output_tensors(&tensors);
    let resp = ModelInferResponse {
        outputs,
        raw_output_contents: raw,
        ..Default::default()
    };
    assert_eq!(from_response(&resp).unwrap(), tensors);
}

#[test]
fn shape_and_length_mismatches_name_the_field() {
    let req = request(vec![input("x", "FP32", &[2, 3], fp32(&[1.0; 5]))], vec![]);
    rejects(
        &req,
        "inputs[0].contents",
        "has 5 values but FP32 [2, 3] needs 6",
    );
    let req = request(
        vec![
            input("a", "FP32", &[1], fp32(&[1.0])),
            input("b", "INT32", &[2], None),
        ],
        vec![],
    );
    rejects(&req, "inputs[1].contents", "needs 2");
    let req = request(
        vec![
            input("a", "INT16", &[1], None),
            input("b", "FP64", &[2], None),
        ],
        vec![vec![0, 0], vec![0; 15]],
    );
    rejects(
        &req,
        "raw_input_contents[1]",
        "has 15 bytes but FP64 [2] needs 16",
    );
    let req = request(
        vec![input("a", "INT16", &[1], None)],
        vec![vec![0, 0], vec![1]],
    );
    rejects(
        &req,
        "raw_input_contents",
        "has 2 entries but there are 1 inputs",
    );
    let req = request(vec![input("x", "FP32", &[2, -1], fp32(&[1.0; 2]))], vec![]);
    rejects(&req, "inputs[0].shape", "dimension 1 is -1");
}

#[test]
fn wrong_typed_field_and_out_of_range_values_are_rejected() {
    let req = request(vec![input("x", "FP64", &[1], fp32(&[1.0]))], vec![]);
    rejects(
        &req,
        "inputs[0].contents",
        "fp32_contents is set but the datatype is FP64",
    );
    let c = InferTensorContents {
        uint_contents: vec![1, 256],
        ..Default::default()
    };
    let req = request(vec![input("x", "UINT8", &[2], Some(c))], vec![]);
    rejects(
        &req,
        "inputs[0].contents",
        "value 256 at index 1 is out of range for UINT8",
    );
    let req = request(vec![input("x", "BOOL", &[2], None)], vec![vec![1, 2]]);
    rejects(&req, "raw_input_contents[0]", "byte 1 is 2");
}

#[test]
fn unsupported_and_unknown_datatypes_are_refused_clearly() {
    for (dt, needle) in [
        ("FP16", "FP16 is not supported; send FP32"),
        ("BYTES", "BYTES (string) tensors are not supported"),
        ("fp32", "unknown datatype \"fp32\""),
        ("", "must not be empty"),
    ] {
        let req = request(vec![input("x", dt, &[1], None)], vec![vec![0; 4]]);
        rejects(&req, "inputs[0].datatype", needle);
    }
}

#[test]
fn names_must_be_present_and_unique() {
    let req = request(
        vec![
            input("x", "FP32", &[1], fp32(&[1.0])),
            input("x", "FP32", &[1], fp32(&[2.0])),
        ],
        vec![],
    );
    rejects(&req, "inputs[1].name", "appears more than once");
    let req = request(vec![input("", "FP32", &[1], fp32(&[1.0]))], vec![]);
    rejects(&req, "inputs[0].name", "must not be empty");
    let long = "n".repeat(MAX_NAME_LEN + 1);
    let req = request(vec![input(&long, "FP32", &[1], fp32(&[1.0]))], vec![]);
    assert_eq!(
        rejects(&req, "inputs[0].name", "at most").reason,
        "LIMIT_EXCEEDED"
    );
}

#[test]
fn mixing_raw_and_typed_contents_is_an_error() {
    let req = request(
        vec![
            input("a", "FP32", &[1], None),
            input("b", "FP32", &[1], fp32(&[1.0])),
        ],
        vec![vec![0; 4], vec![0; 4]],
    );
    rejects(
        &req,
        "inputs[1].contents",
        "must be empty when raw_input_contents is used",
    );
    // An empty contents message next to raw bytes is fine (prost keeps it as Some(default)).
    let req = request(
        vec![input(
            "a",
            "FP32",
            &[1],
            Some(InferTensorContents::default()),
        )],
        vec![vec![0; 4]],
    );
    assert!(from_request(&req).is_ok());
}

#[test]
fn huge_shapes_are_rejected_quickly_without_allocating() {
    let start = Instant::now();
    for (shape, needle) in [
        (vec![i64::MAX, i64::MAX], "more than"),
        (vec![1 << 31, 1 << 31, 1 << 31], "more than"),
        (vec![4096, 4096, 2], "more than"),
        (vec![0, i64::MAX], "more than"),
        (vec![1; MAX_DIMS + 1], "at most 8 allowed"),
    ] {
        let req = request(vec![input("x", "FP64", &shape, None)], vec![vec![]]);
        let e = rejects(&req, "inputs[0].shape", needle);
        assert_eq!(e.reason, "LIMIT_EXCEEDED");
    }
    // A shape within the cap but without the data for it fails on length, not on allocation.
    let req = request(
        vec![input("x", "FP64", &[4096, 4096], None)],
        vec![vec![0; 8]],
    );
    rejects(&req, "raw_input_contents[0]", "has 8 bytes");
    // The cap is on the whole request.
    let half = (MAX_ELEMENTS / 2 + 1) as i64;
    let req = request(
        vec![
            input("a", "UINT8", &[half], None),
            input("b", "UINT8", &[half], None),
        ],
        vec![],
    );
    assert_eq!(
        rejects(&req, "inputs", "together hold more than").reason,
        "LIMIT_EXCEEDED"
    );
    assert!(
        start.elapsed().as_millis() < 1000,
        "validation should be instant"
    );
    let many: Vec<_> = (0..=MAX_TENSORS)
        .map(|i| input(&format!("x{i}"), "FP32", &[0], None))
        .collect();
    rejects(&request(many, vec![]), "inputs", "at most 128 allowed");
}

#[test]
fn zero_sized_tensors_are_fine() {
    let req = request(vec![input("x", "FP32", &[0, 8], None)], vec![]);
    let ts = from_request(&req).unwrap();
    assert!(ts[0].is_empty());
    assert_eq!(ts[0].shape(), &[0, 8]);
}

#[test]
fn tensor_new_checks_the_shape() {
    assert!(Tensor::new("x", vec![2, 2], TensorData::Int32(vec![1, 2, 3])).is_err());
    assert!(Tensor::new("x", vec![usize::MAX, 2], TensorData::Int32(vec![])).is_err());
    assert!(Tensor::new("", vec![1], TensorData::Int32(vec![1])).is_err());
    assert_eq!(t("x", vec![], TensorData::Int32(vec![7])).len(), 1);
}

#[test]
fn digest_ignores_order_but_not_values_names_types_or_shapes() {
    let a = t("a", vec![2], TensorData::Fp32(vec![1.0, 2.0]));
    let b = t("b", vec![1], TensorData::Int64(vec![7]));
    let d = canonical_digest(&[a.clone(), b.clone()]);
    assert_eq!(d.len(), 64);
    assert_eq!(d, canonical_digest(&[b.clone(), a.clone()]));
    let changed = [
        vec![t("a", vec![2], TensorData::Fp32(vec![1.0, 2.5])), b.clone()],
        vec![t("c", vec![2], TensorData::Fp32(vec![1.0, 2.0])), b.clone()],
        vec![
            t("a", vec![2, 1], TensorData::Fp32(vec![1.0, 2.0])),
            b.clone(),
        ],
        vec![t("a", vec![2], TensorData::Fp64(vec![1.0, 2.0])), b.clone()],
        vec![
            t("a", vec![2], TensorData::Fp32(vec![-0.0, 2.0])),
            b.clone(),
        ],
        vec![a.clone()],
    ];
    for c in changed {
        assert_ne!(d, canonical_digest(&c), "{c:?}");
    }
    // Pinned (recomputed independently in Python from the documented encoding): digests are
    // stored in decision records and compared over time, so the encoding must not drift.
    assert_eq!(
        canonical_digest(&[t("x", vec![1], TensorData::Uint8(vec![1]))]),
        "bf135bedc7221cd832957f7689c8c7b3c5fe309e80eb385ff3f0035a8d39a75f"
    );
}

#[test]
fn json_uses_the_rest_form() {
    let ts = [
        t("x", vec![1, 3], TensorData::Fp32(vec![0.1, f32::NAN, -2.0])),
        t("y", vec![2], TensorData::Bool(vec![true, false])),
    ];
    let j = to_json(&ts);
    assert_eq!(
        j,
        serde_json::json!([
            {"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [0.1, null, -2.0]},
            {"name": "y", "datatype": "BOOL", "shape": [2], "data": [true, false]},
        ])
    );
}

#[test]
fn select_outputs_filters_and_orders() {
    let outs = vec![
        t("a", vec![1], TensorData::Int32(vec![1])),
        t("b", vec![1], TensorData::Int32(vec![2])),
    ];
    let ask = |names: &[&str]| -> Vec<InferRequestedOutputTensor> {
        names
            .iter()
            .map(|n| InferRequestedOutputTensor {
                name: (*n).into(),
                ..Default::default()
            })
            .collect()
    };
    assert_eq!(select_outputs(outs.clone(), &[]).unwrap(), outs);
    let picked = select_outputs(outs.clone(), &ask(&["b"])).unwrap();
    assert_eq!(picked, vec![outs[1].clone()]);
    let e = select_outputs(outs.clone(), &ask(&["a", "zz"])).unwrap_err();
    assert_eq!(e.violations[0].field, "outputs[1].name");
    assert!(e.message.contains("no output \"zz\""), "{e}");
    let e = select_outputs(outs, &ask(&["a", "a"])).unwrap_err();
    assert!(e.message.contains("requested twice"), "{e}");
}

fn arb_data() -> impl Strategy<Value = TensorData> {
    prop_oneof![
        prop::collection::vec(any::<bool>(), 6).prop_map(TensorData::Bool),
        prop::collection::vec(any::<u16>(), 6).prop_map(TensorData::Uint16),
        prop::collection::vec(any::<i8>(), 6).prop_map(TensorData::Int8),
        prop::collection::vec(any::<i64>(), 6).prop_map(TensorData::Int64),
        prop::collection::vec(any::<f32>(), 6).prop_map(TensorData::Fp32),
        prop::collection::vec(any::<f64>(), 6).prop_map(TensorData::Fp64),
    ]
}

proptest! {
    /// Arbitrary wire input never panics; when accepted, it survives a typed round trip.
    #[test]
    fn hostile_requests_never_panic(
        shape in prop::collection::vec(any::<i64>(), 0..10),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        dt in prop::sample::select(vec!["BOOL", "UINT8", "INT16", "FP32", "FP64", "FP16", "X"]),
        use_raw in any::<bool>(),
    ) {
        let contents = (!use_raw).then(|| InferTensorContents {
            fp32_contents: raw.iter().map(|&b| f32::from(b)).collect(),
            ..Default::default()
        });
        let raws = if use_raw { vec![raw] } else { vec![] };
        let req = request(vec![input("x", dt, &shape, contents)], raws);
        if let Ok(ts) = from_request(&req) {
            let again = from_request(&request(to_input_tensors(&ts), vec![])).unwrap();
            prop_assert_eq!(canonical_digest(&again), canonical_digest(&ts));
        }
    }

    /// Raw and typed encodings of the same tensors decode identically.
    #[test]
    fn raw_and_typed_agree(data in arb_data()) {
        let ts = vec![Tensor::new("x", vec![2, 3], data).unwrap()];
        let typed = from_request(&request(to_input_tensors(&ts), vec![])).unwrap();
        let (outs, raw) = to_raw_output_tensors(&ts);
        let resp = ModelInferResponse { outputs: outs, raw_output_contents: raw, ..Default::default() };
        let raw = from_response(&resp).unwrap();
        prop_assert_eq!(canonical_digest(&typed), canonical_digest(&ts));
        prop_assert_eq!(canonical_digest(&raw), canonical_digest(&ts));
    }
}
