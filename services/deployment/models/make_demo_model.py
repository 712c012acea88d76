"""Generates ``fraud_demo.onnx``, the small deterministic demo model shipped with Steward.

The model scores a transaction from 8 numeric features::

    features  FP32 [batch, 8]
      -> Gemm(W [8, 1], b [1])        (fixed weights below)
      -> Sigmoid
    score     FP32 [batch, 1]         (probability of fraud, in (0, 1))

``batch`` is a symbolic dimension, so any number of rows can be scored at once.

Reproduce (the output file is byte-for-byte identical on every run)::

    python3 -m venv /tmp/onnx-venv
    /tmp/onnx-venv/bin/pip install onnx==1.17.0 numpy==2.4.6 protobuf==7.36.2
    /tmp/onnx-venv/bin/python services/deployment/models/make_demo_model.py

Tested with Python 3.11.7, onnx 1.17.0, numpy 2.4.6, protobuf 7.36.2.

The script also scores ``FIXED_INPUT`` with the ONNX reference evaluator, checks it against a
plain numpy computation, and prints the expected scores; the Rust unit test
``infer::onnx::tests::demo_model_matches_reference`` asserts the same numbers to 1e-6.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSET = 13
IR_VERSION = 8  # the IR version that goes with opset 13; widely readable

INPUT = "features"
OUTPUT = "score"
N_FEATURES = 8

# Fixed weights: amount, hour-of-day risk, merchant risk, distance from home, card age,
# transactions in the last hour, foreign flag, account tenure.
WEIGHTS = np.array(
    [[0.8], [-0.5], [0.3], [1.2], [-0.7], [0.05], [0.9], [-1.1]], dtype=np.float32
)
BIAS = np.array([-0.25], dtype=np.float32)

FIXED_INPUT = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 0.5, -0.25, 2.0, 0.1, 3.0, 1.0, 0.75],
        [-1.5, 2.0, 0.5, -0.5, 1.0, 0.0, 0.0, 2.0],
    ],
    dtype=np.float32,
)


def build() -> onnx.ModelProto:
    w = numpy_helper.from_array(WEIGHTS, name="W")
    b = numpy_helper.from_array(BIAS, name="b")
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Gemm", [INPUT, "W", "b"], ["logit"], name="linear"),
            helper.make_node("Sigmoid", ["logit"], [OUTPUT], name="sigmoid"),
        ],
        name="fraud_demo",
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", N_FEATURES])],
        outputs=[helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1])],
        initializer=[w, b],
    )
    model = helper.make_model(
        graph,
        producer_name="steward-make-demo-model",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    model.doc_string = "Steward demo fraud model: sigmoid(features @ W + b)"
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    model = build()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fraud_demo.onnx")
    data = model.SerializeToString(deterministic=True)
    with open(out, "wb") as f:
        f.write(data)

    (scores,) = ReferenceEvaluator(model).run(None, {INPUT: FIXED_INPUT})
    logits = FIXED_INPUT.astype(np.float64) @ WEIGHTS.astype(np.float64) + BIAS
    expected = 1.0 / (1.0 + np.exp(-logits))
    if not np.allclose(scores, expected, atol=1e-6):
        sys.exit(f"reference evaluator disagrees with numpy: {scores} vs {expected}")

    print(f"wrote {out} ({len(data)} bytes)")
    print(f"input {INPUT} FP32 [-1, {N_FEATURES}] -> output {OUTPUT} FP32 [-1, 1]")
    for row, score in zip(FIXED_INPUT, scores[:, 0]):
        print(f"[{', '.join(f'{v:g}' for v in row)}] -> {float(score):.9f}")


if __name__ == "__main__":
    main()
