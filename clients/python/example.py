#!/usr/bin/env python3
"""Steward from Python: track a training run over gRPC.

    pip install -r clients/python/requirements.txt
    clients/python/generate.sh                 # stubs beside this script (or: pip install ./clients/python)
    steward up &                               # or set STEWARD_ADDR to your server
    python clients/python/example.py

Checks health, lists the services by reflection, creates an experiment and a run, logs params
and metrics, searches runs with a filter and finishes the run. It uses the raw stubs; the
`steward` package also has a shorter API for the same (see README.md).
"""

import os
import sys
import uuid

# The generated stubs, packages `steward.<domain>.v1` that import each other by those names: in
# gen/ beside this script (`generate.sh DIR/gen`), beside it (`generate.sh` in a checkout), or
# installed (`pip install ./clients/python`).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (  # noqa: E402
    ProtoReflectionDescriptorDatabase,
)
from steward.tracking.v1 import tracking_pb2 as pb  # noqa: E402
from steward.tracking.v1 import tracking_pb2_grpc  # noqa: E402
from steward.registry.v1 import registry_pb2 as rpb  # noqa: E402
from steward.registry.v1 import registry_pb2_grpc  # noqa: E402

# Same variable as the `steward` CLI; a leading http:// is accepted.
ADDR = os.environ.get("STEWARD_ADDR", "127.0.0.1:50051").removeprefix("http://")


def main() -> None:
    with grpc.insecure_channel(ADDR) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)

        # Standard gRPC health checking: "" is the whole server.
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(status))

        # Server reflection (grpcio-reflection speaks v1alpha; Steward serves v1 and v1alpha).
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        print("services:", ", ".join(sorted(services)))

        tracking = tracking_pb2_grpc.TrackingServiceStub(channel)

        # request_id makes a mutation safe to retry: a retry returns the original result.
        experiment = tracking.CreateExperiment(
            pb.CreateExperimentRequest(
                experiment=pb.Experiment(
                    display_name=f"python-example-{uuid.uuid4().hex[:8]}",
                    tags={"team": "examples"},
                ),
                request_id=str(uuid.uuid4()),
            )
        )
        print("experiment:", experiment.name, experiment.display_name)

        run = tracking.CreateRun(
            pb.CreateRunRequest(parent=experiment.name, run=pb.Run(run_name="baseline"))
        )
        print("run:", run.name)

        # One atomic batch: params, and metrics with their training step.
        accuracy = [0.71, 0.84, 0.93]
        written = tracking.LogRunData(
            pb.LogRunDataRequest(
                run=run.name,
                params=[pb.Param(key="lr", value="0.01"), pb.Param(key="epochs", value="3")],
                metrics=[
                    pb.MetricPoint(key="accuracy", value=v, step=step)
                    for step, v in enumerate(accuracy)
                ]
                + [pb.MetricPoint(key="loss", value=0.21, step=2)],
            )
        )
        print("logged:", written.metric_points_written, "metric points")

        # Filters use the latest value of each metric.
        found = tracking.SearchRuns(
            pb.SearchRunsRequest(
                experiments=[experiment.name],
                filter="metrics.accuracy > 0.9 AND params.lr = '0.01'",
                order_by="metrics.accuracy desc",
            )
        )
        print(f"search: {len(found.runs)} run(s) with accuracy > 0.9")
        for r in found.runs:
            metrics = " ".join(f"{m.key}={m.value:.2f}" for m in r.latest_metrics)
            print(f"  {r.name} {r.run_name} {metrics} params={dict(sorted(r.params.items()))}")

        finished = tracking.UpdateRun(
            pb.UpdateRunRequest(
                run=pb.Run(name=run.name, status=pb.FINISHED),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            )
        )
        print("finished:", finished.name, pb.RunStatus.Name(finished.status))

        # The model files go to the run's artifacts (a client stream: header, then chunks).
        def upload(path: str, data: bytes):
            yield pb.UploadArtifactRequest(header=pb.ArtifactHeader(run=run.name, path=path))
            yield pb.UploadArtifactRequest(chunk=data)

        tracking.UploadArtifact(upload("model/model.onnx", b"not really onnx"))

        # Register the run's model directory as version 1 of a new model; the registry checks
        # the run and computes the digest of the files.
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        model = registry.CreateRegisteredModel(
            rpb.CreateRegisteredModelRequest(
                registered_model=rpb.RegisteredModel(name=f"py-model-{uuid.uuid4().hex[:8]}")
            )
        )
        version = registry.CreateModelVersion(
            rpb.CreateModelVersionRequest(
                parent=model.name,
                model_version=rpb.ModelVersion(
                    source_run=run.name, artifact_path="model", format="onnx"
                ),
            )
        )
        status = rpb.ModelVersionStatus.Name(version.status)
        print("version:", version.name, status, version.content_digest)
        registry.SetModelVersionAlias(
            rpb.SetModelVersionAliasRequest(
                registered_model=model.name, alias="champion", version=version.version
            )
        )
        champion = registry.GetModelVersion(rpb.GetModelVersionRequest(name=f"{model.name}@champion"))
        lineage = registry.GetLineage(rpb.GetLineageRequest(name=champion.name))
        accuracy = lineage.metrics["accuracy"]
        print(f"champion: {champion.name} accuracy={accuracy:.2f} lr={lineage.params['lr']}")


if __name__ == "__main__":
    try:
        main()
    except grpc.FutureTimeoutError:
        sys.exit(f"error: no Steward server at {ADDR} (start one with `steward up`)")
    except grpc.RpcError as e:
        sys.exit(f"error: {e.code().name}: {e.details()}")
