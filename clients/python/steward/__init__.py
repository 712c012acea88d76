"""Python client of Steward, the ML model management platform.

The generated gRPC stubs are the subpackages `steward.<domain>.v1` (e.g.
`steward.tracking.v1.tracking_pb2` and `tracking_pb2_grpc`). On top of them, a small API in
the style of MLflow's::

    import steward

    steward.connect()                      # $STEWARD_ADDR, else 127.0.0.1:50051
    steward.set_experiment("fraud")
    with steward.start_run("baseline"):    # FINISHED on exit, FAILED on an exception
        steward.log_params({"lr": 0.01, "epochs": 3})
        for step, acc in enumerate([0.71, 0.84, 0.93]):
            steward.log_metric("accuracy", acc, step=step)
        steward.log_artifact("model.onnx", "model")

:class:`Client` has the same methods taking the run explicitly. Failed calls raise
:class:`StewardError`.
"""

__version__ = "0.1.0"

from steward._client import Client, StewardError
from steward._fluent import (
    ActiveRun,
    active_run,
    connect,
    end_run,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    register_model,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)

__all__ = [
    "ActiveRun",
    "Client",
    "StewardError",
    "active_run",
    "connect",
    "end_run",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]
