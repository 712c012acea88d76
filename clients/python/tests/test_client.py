"""Tests of the steward package against a live server at $STEWARD_ADDR (skipped without it).

    STEWARD_ADDR=127.0.0.1:50051 python -m unittest discover -s clients/python/tests -v

What the helper wrote is read back with the raw stubs, so a broken helper fails here.
"""

import hashlib
import os
import tempfile
import unittest
import uuid
from typing import Any, List, Tuple

import grpc

import steward
from steward.registry.v1 import registry_pb2 as rpb
from steward.tracking.v1 import tracking_pb2 as pb
from steward.tracking.v1 import tracking_pb2_grpc

ADDR = os.environ.get("STEWARD_ADDR")


def setUpModule() -> None:
    if not ADDR:
        raise unittest.SkipTest("set STEWARD_ADDR to a running Steward server")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Recorder(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
):
    """Records the method and request of every call on a channel."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, Any]] = []

    def methods(self, suffix: str) -> List[Any]:
        return [req for m, req in self.calls if m.endswith("/" + suffix)]

    def intercept_unary_unary(self, continuation, details, request):
        self.calls.append((details.method, request))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self.calls.append((details.method, request))
        return continuation(details, request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        self.calls.append((details.method, None))
        return continuation(details, request_iterator)


class StewardTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = steward.connect(ADDR, timeout=30)
        # An independent view of the server: raw stubs on a channel of their own.
        self.raw_channel = grpc.insecure_channel(ADDR.removeprefix("http://"))
        self.raw = tracking_pb2_grpc.TrackingServiceStub(self.raw_channel)
        self.experiment = steward.set_experiment(unique("py-test"))

    def tearDown(self) -> None:
        while steward.active_run():
            steward.end_run("KILLED")
        self.raw_channel.close()
        self.client.close()

    def get_run(self, name: str) -> pb.Run:
        return self.raw.GetRun(pb.GetRunRequest(name=name), timeout=30)

    def recorded_client(self) -> Tuple[steward.Client, Recorder]:
        rec = Recorder()
        channel = grpc.intercept_channel(grpc.insecure_channel(ADDR.removeprefix("http://")), rec)
        return steward.Client(channel=channel, timeout=30), rec

    def test_run_with_params_metrics_tags_finishes(self) -> None:
        with steward.start_run("baseline", tags={"team": "ml"}) as run:
            self.assertIs(steward.active_run(), run)
            self.assertEqual(run.experiment, self.experiment.name)
            steward.log_param("lr", 0.01)
            steward.log_params({"epochs": 3, "optimizer": "adam"})
            steward.log_metric("accuracy", 0.71, step=0)
            steward.log_metric("accuracy", 0.93, step=1)
            steward.log_metrics({"loss": 0.2, "f1": 0.8}, step=1)
            steward.set_tag("stage", "dev")
            steward.set_tags({"owner": "alice", "priority": 1})
            self.assertEqual(self.get_run(run.name).status, pb.RUNNING)
        self.assertIsNone(steward.active_run())

        got = self.get_run(run.name)
        self.assertEqual(got.run_name, "baseline")
        self.assertEqual(pb.RunStatus.Name(got.status), "FINISHED")
        self.assertTrue(got.HasField("end_time"))
        self.assertEqual(dict(got.params), {"lr": "0.01", "epochs": "3", "optimizer": "adam"})
        for k, v in {"team": "ml", "stage": "dev", "owner": "alice", "priority": "1"}.items():
            self.assertEqual(got.tags[k], v)
        latest = {m.key: (m.value, m.step) for m in got.latest_metrics}
        self.assertEqual(latest["accuracy"], (0.93, 1))
        self.assertEqual(latest["loss"], (0.2, 1))
        self.assertEqual(latest["f1"], (0.8, 1))
        history = self.raw.GetMetricHistory(
            pb.GetMetricHistoryRequest(run=run.name, metric_key="accuracy"), timeout=30
        )
        self.assertEqual(list(history.series.values), [0.71, 0.93])
        self.assertEqual(list(history.series.steps), [0, 1])

    def test_exception_marks_run_failed_and_propagates(self) -> None:
        with self.assertRaises(ZeroDivisionError):
            with steward.start_run() as run:
                1 / 0
        self.assertIsNone(steward.active_run())
        got = self.get_run(run.name)
        self.assertEqual(pb.RunStatus.Name(got.status), "FAILED")
        self.assertTrue(got.HasField("end_time"))

    def test_end_run_and_nested_runs(self) -> None:
        parent = steward.start_run("parent")
        with self.assertRaises(steward.StewardError):
            steward.start_run("second")  # one top-level run at a time
        with steward.start_run("child", nested=True) as child:
            self.assertIs(steward.active_run(), child)
        self.assertIs(steward.active_run(), parent)
        self.assertEqual(self.get_run(child.name).parent_run, parent.name)
        steward.end_run("KILLED")
        self.assertIsNone(steward.active_run())
        self.assertEqual(pb.RunStatus.Name(self.get_run(parent.name).status), "KILLED")
        steward.end_run()  # no active run: nothing to do

    def test_batches_and_request_ids(self) -> None:
        client, rec = self.recorded_client()
        run = client.create_run(self.experiment, "batched")
        client.log_metrics(run, {f"m{i}": float(i) for i in range(50)}, step=7)
        client.log_params(run, {f"p{i}": i for i in range(20)})
        client.end_run(run)
        log_calls = rec.methods("LogRunData")
        self.assertEqual(len(log_calls), 2, "one LogRunData per log_metrics / log_params")
        self.assertEqual(len(log_calls[0].metrics), 50)
        for req in [*rec.methods("CreateRun"), *log_calls, *rec.methods("UpdateRun")]:
            self.assertEqual(uuid.UUID(req.request_id).version, 4, req)
        got = self.get_run(run.name)
        self.assertEqual(len(got.latest_metrics), 50)
        self.assertEqual(len(got.params), 20)

    def test_artifact_round_trip(self) -> None:
        data = os.urandom(2_500_000)  # several upload chunks
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "weights.bin")
            with open(path, "wb") as f:
                f.write(data)
            with steward.start_run() as run:
                art = steward.log_artifact(path, "model")
        self.assertEqual(art.path, "model/weights.bin")
        self.assertEqual(art.size_bytes, len(data))
        self.assertEqual(art.sha256, hashlib.sha256(data).hexdigest())

        stream = self.raw.DownloadArtifact(
            pb.DownloadArtifactRequest(run=run.name, path="model/weights.bin"), timeout=60
        )
        got = b"".join(m.chunk for m in stream)
        self.assertEqual(got, data)
        self.assertEqual(self.client.download_artifact(run, "model/weights.bin"), data)

    def test_log_artifacts_and_register_model(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "sub"))
            for rel, body in (("model.onnx", b"onnx"), ("sub/vocab.txt", b"a\nb\n")):
                with open(os.path.join(d, rel), "wb") as f:
                    f.write(body)
            with steward.start_run() as run:
                steward.log_metric("accuracy", 0.9)
                arts = steward.log_artifacts(d, "model")
        self.assertEqual(sorted(a.path for a in arts), ["model/model.onnx", "model/sub/vocab.txt"])

        name = unique("py-model")
        v1 = steward.register_model(run, name, format="onnx")
        self.assertEqual(v1.name, f"registeredModels/{name}/versions/1")
        self.assertEqual(rpb.ModelVersionStatus.Name(v1.status), "READY")
        self.assertTrue(v1.content_digest.startswith("sha256:"))
        self.assertEqual(v1.source_run, run.name)
        v2 = steward.register_model(f"runs:/{run.name}/model", name)
        self.assertEqual(v2.version, 2)
        self.assertEqual(v2.content_digest, v1.content_digest)

    def test_log_input(self) -> None:
        with steward.start_run() as run:
            steward.log_input(
                "train", "sha256:" + "ab" * 32, context="training",
                source_uri="s3://data/train.parquet", schema={"fields": [{"name": "age", "type": "int64"}]},
            )
        (inp,) = self.get_run(run.name).inputs
        self.assertEqual(inp.context, "training")
        self.assertEqual(inp.dataset.name, "train")
        self.assertEqual(inp.dataset.source_uri, "s3://data/train.parquet")
        self.assertIn('"age"', inp.dataset.schema_json)

    def test_search_runs_pages_through_all(self) -> None:
        tag = uuid.uuid4().hex
        names = set()
        for i in range(7):
            with steward.start_run(f"r{i}", tags={"batch": tag}) as run:
                steward.log_metric("score", i)
            names.add(run.name)
        with steward.start_run("other"):
            pass
        client, rec = self.recorded_client()
        found = list(
            client.search_runs(
                f"tags.batch = '{tag}'", self.experiment.display_name,
                order_by="metrics.score desc", page_size=3,
            )
        )
        self.assertEqual({r.name for r in found}, names)
        self.assertEqual(len(found), 7)
        self.assertEqual([r.latest_metrics[0].value for r in found], [6, 5, 4, 3, 2, 1, 0])
        self.assertEqual(len(rec.methods("SearchRuns")), 3, "pages of 3, 3 and 1")
        # The module-level function searches the current experiment.
        self.assertEqual(len(list(steward.search_runs(f"tags.batch = '{tag}'", page_size=2))), 7)

    def test_bad_request_names_the_field(self) -> None:
        with steward.start_run():
            with self.assertRaises(steward.StewardError) as cm:
                steward.log_param("", 1)
        e = cm.exception
        self.assertEqual(e.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(e.field, "params[0].key")
        self.assertIn("params[0].key", str(e))
        self.assertTrue(e.reason, "ErrorInfo.reason is read")

        with self.assertRaises(steward.StewardError) as cm:
            steward.set_experiment("")
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.field, "experiment.display_name")

    def test_not_found_is_a_steward_error(self) -> None:
        missing = f"{self.experiment.name}/runs/{uuid.uuid4().hex}"
        with self.assertRaises(steward.StewardError) as cm:
            self.client.get_run(missing)
        self.assertEqual(cm.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIsInstance(cm.exception.__cause__, grpc.RpcError)

    def test_logging_without_active_run_is_a_clear_error(self) -> None:
        self.assertIsNone(steward.active_run())
        for call in (
            lambda: steward.log_metric("loss", 0.1),
            lambda: steward.log_param("lr", 1),
            lambda: steward.set_tag("a", "b"),
        ):
            with self.assertRaises(steward.StewardError) as cm:
                call()
            self.assertIn("no active run", str(cm.exception))
            self.assertIn("start_run", str(cm.exception))

    def test_set_experiment_gets_or_creates(self) -> None:
        again = steward.set_experiment(self.experiment.display_name)
        self.assertEqual(again.name, self.experiment.name)
        by_name = steward.set_experiment(self.experiment.name)
        self.assertEqual(by_name.display_name, self.experiment.display_name)

    def test_http_address(self) -> None:
        with steward.Client("http://" + ADDR.removeprefix("http://")) as client:
            self.assertEqual(client.get_experiment(self.experiment.name).name, self.experiment.name)


if __name__ == "__main__":
    unittest.main()
