use std::sync::Arc;
use std::time::Instant;

use steward_common::ErrorKind;

use super::*;
use crate::infer::tensor::TensorData;
use crate::infer::{DEMO_FEATURES, DEMO_INPUT, DEMO_MODEL, DEMO_OUTPUT};

/// The rows `make_demo_model.py` scores, and the scores it prints (ONNX reference evaluator,
/// cross-checked against numpy in float64).
const FIXED_INPUT: [[f32; 8]; 3] = [
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [1.0, 0.5, -0.25, 2.0, 0.1, 3.0, 1.0, 0.75],
    [-1.5, 2.0, 0.5, -0.5, 1.0, 0.0, 0.0, 2.0],
];
const EXPECTED: [f64; 3] = [0.437823504, 0.941585481, 0.003018416];

fn demo() -> OnnxModel {
    OnnxModel::load(DEMO_MODEL).expect("the demo model loads")
}

fn features(rows: &[[f32; 8]]) -> Tensor {
    let data = rows.iter().flatten().copied().collect();
    Tensor::new(
        DEMO_INPUT,
        vec![rows.len(), DEMO_FEATURES],
        TensorData::Fp32(data),
    )
    .unwrap()
}

fn scores(out: &[Tensor]) -> &[f32] {
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name(), DEMO_OUTPUT);
    match out[0].data() {
        TensorData::Fp32(v) => v,
        other => panic!("unexpected output {other:?}"),
    }
}

#[test]
fn demo_model_declares_its_tensors() {
    let m = demo();
    let meta = |name: &str, shape: Vec<i64>| TensorMeta {
        name: name.into(),
        datatype: DataType::Fp32,
        shape,
    };
    assert_eq!(m.inputs(), &[meta(DEMO_INPUT, vec![-1, 8])]);
    assert_eq!(m.outputs(), &[meta(DEMO_OUTPUT, vec![-1, 1])]);
}

#[test]
fn demo_model_matches_reference() {
    let out = demo().run(vec![features(&FIXED_INPUT)]).unwrap();
    assert_eq!(out[0].shape(), &[3, 1]);
    for (got, want) in scores(&out).iter().zip(EXPECTED) {
        assert!(
            (f64::from(*got) - want).abs() <= 1e-6,
            "got {got}, want {want}"
        );
    }
}

#[test]
fn batch_of_256_rows_matches_row_by_row() {
    let m = demo();
    let rows: Vec<[f32; 8]> = (0..256)
        .map(|i| std::array::from_fn(|j| ((i * 8 + j) % 17) as f32 / 8.0 - 1.0))
        .collect();
    let out = m.run(vec![features(&rows)]).unwrap();
    assert_eq!(out[0].shape(), &[256, 1]);
    let batch = scores(&out).to_vec();
    for (i, row) in rows.iter().enumerate().step_by(37) {
        let one = m.run(vec![features(std::slice::from_ref(row))]).unwrap();
        assert!((scores(&one)[0] - batch[i]).abs() <= 1e-6);
    }
    let empty = m.run(vec![features(&[])]).unwrap();
    assert_eq!(empty[0].shape(), &[0, 1]);
}

#[test]
fn wrong_inputs_are_named() {
    let m = demo();
    let err = |inputs: Vec<Tensor>| m.run(inputs).unwrap_err();

    let e = err(vec![
        Tensor::new("feats", vec![1, 8], TensorData::Fp32(vec![0.0; 8])).unwrap(),
    ]);
    assert_eq!(e.violations[0].field, "inputs[0].name");
    assert!(e.message.contains("no input \"feats\""), "{e}");
    assert!(e.message.contains("\"features\" (FP32 [-1, 8])"), "{e}");

    let e = err(vec![
        Tensor::new(DEMO_INPUT, vec![1, 8], TensorData::Fp64(vec![0.0; 8])).unwrap(),
    ]);
    assert_eq!(e.violations[0].field, "inputs[0].datatype");
    assert!(e.message.contains("needs FP32, got FP64"), "{e}");

    let e = err(vec![
        Tensor::new(DEMO_INPUT, vec![2, 7], TensorData::Fp32(vec![0.0; 14])).unwrap(),
    ]);
    assert_eq!(e.violations[0].field, "inputs[0].shape");
    assert!(e.message.contains("got shape [2, 7]"), "{e}");

    let e = err(vec![
        Tensor::new(DEMO_INPUT, vec![8], TensorData::Fp32(vec![0.0; 8])).unwrap(),
    ]);
    assert_eq!(e.violations[0].field, "inputs[0].shape");

    let e = err(vec![]);
    assert_eq!(e.violations[0].field, "inputs");
    assert!(e.message.contains("missing input \"features\""), "{e}");

    let e = err(vec![features(&FIXED_INPUT), features(&FIXED_INPUT)]);
    assert_eq!(e.violations[0].field, "inputs[1].name");
}

#[test]
fn corrupt_models_are_errors_not_panics() {
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        b"not an onnx model".to_vec(),
        vec![0xff; 64],
        DEMO_MODEL[..DEMO_MODEL.len() / 2].to_vec(),
    ];
    // Every single-byte corruption of the demo model loads or fails cleanly.
    for i in 0..DEMO_MODEL.len() {
        let mut m = DEMO_MODEL.to_vec();
        m[i] ^= 0x5a;
        cases.push(m);
    }
    let mut failed = 0;
    for bytes in &cases[..4] {
        let e = OnnxModel::load(bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert_eq!(e.reason, "INVALID_MODEL");
        assert!(e.message.len() < 400, "{}", e.message);
    }
    for bytes in &cases[4..] {
        if let Err(e) = OnnxModel::load(bytes) {
            assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
            failed += 1;
        }
    }
    assert!(failed > 0);
}

#[test]
fn a_panic_inside_tract_becomes_an_error() {
    use prost::Message as _;
    use tract_onnx::pb;
    // A STRING initializer stored as raw bytes reaches an `unimplemented!` in tract's loader.
    let model = pb::ModelProto {
        ir_version: 8,
        graph: Some(pb::GraphProto {
            name: "g".into(),
            initializer: vec![pb::TensorProto {
                name: "w".into(),
                data_type: pb::tensor_proto::DataType::String as i32,
                dims: vec![1],
                raw_data: b"x".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = OnnxModel::load(&model.encode_to_vec()).unwrap_err();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::FailedPrecondition, "INVALID_MODEL"),
        "{e}"
    );
    assert!(e.message.contains("malformed"), "{e}");
}

#[test]
fn model_is_shared_across_threads_without_locking() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<OnnxModel>();
    let m = Arc::new(demo());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let out = m.run(vec![features(&FIXED_INPUT)]).unwrap();
                    assert!((f64::from(scores(&out)[1]) - EXPECTED[1]).abs() <= 1e-6);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Not an assertion: prints the per-prediction cost (run with `--nocapture`).
#[test]
fn prediction_timing() {
    let m = demo();
    let one = features(&FIXED_INPUT[1..2]);
    for _ in 0..100 {
        m.run(vec![one.clone()]).unwrap();
    }
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        m.run(vec![one.clone()]).unwrap();
    }
    let single = start.elapsed() / n;
    let rows: Vec<[f32; 8]> = vec![FIXED_INPUT[1]; 256];
    let batch = features(&rows);
    let start = Instant::now();
    for _ in 0..200 {
        m.run(vec![batch.clone()]).unwrap();
    }
    let per_batch = start.elapsed() / 200;
    println!(
        "demo model (debug build): {single:?} per single-row run; {per_batch:?} per 256-row batch ({:?} per row)",
        per_batch / 256
    );
}
