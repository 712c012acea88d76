"""The module-level API in the style of MLflow's: one default client, a current experiment and
a stack of active runs (module state, shared by the threads of a process)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Union

import grpc

from steward._client import Client, ExperimentRef, Status, StewardError
from steward.registry.v1 import registry_pb2 as rpb
from steward.tracking.v1 import tracking_pb2 as pb

#: The experiment runs go to when neither `start_run(experiment=)` nor `set_experiment` says.
DEFAULT_EXPERIMENT = "Default"

_client: Optional[Client] = None
_experiment: Optional[pb.Experiment] = None
_active: List["ActiveRun"] = []


class ActiveRun:
    """A run started by :func:`start_run`. As a context manager it ends the run: FINISHED on
    normal exit, FAILED on an exception (KILLED on KeyboardInterrupt)."""

    def __init__(self, run: pb.Run, client: Client) -> None:
        #: The run as created.
        self.run = run
        self.client = client

    @property
    def name(self) -> str:
        """Resource name `experiments/{e}/runs/{r}`."""
        return self.run.name

    @property
    def run_name(self) -> str:
        return self.run.run_name

    @property
    def experiment(self) -> str:
        """Resource name of the run's experiment."""
        return self.run.name.split("/runs/")[0]

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name} ({self.run_name})>"

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: Any) -> None:
        if self not in _active:  # already ended with end_run()
            return
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        _end(self, status)


def _end(run: ActiveRun, status: Status) -> None:
    _active.remove(run)  # first, so a failed call does not leave the run active here
    run.client.end_run(run, status)


def _default_client() -> Client:
    return _client if _client is not None else connect()


def _current() -> ActiveRun:
    if not _active:
        raise StewardError(
            "no active run: start one with steward.start_run()",
            code=grpc.StatusCode.FAILED_PRECONDITION,
        )
    return _active[-1]


def connect(address: Optional[str] = None, *, timeout: Optional[float] = None) -> Client:
    """Connects the module-level API to Steward and returns the client.

    `address`: `host:port` or `http://host:port`; default `$STEWARD_ADDR`, else
    127.0.0.1:50051. `timeout`: deadline of each call, in seconds. Calling the API without
    connecting first connects with the defaults.
    """
    global _client
    _client = Client(address, timeout=timeout)
    return _client


def set_experiment(name: str) -> pb.Experiment:
    """Makes experiment `name` (display name, or `experiments/{e}`) current, creating it if
    there is none by that display name."""
    global _experiment
    client = _default_client()
    if name.startswith("experiments/"):
        _experiment = client.get_experiment(name)
    else:
        _experiment = client.get_or_create_experiment(name)
    return _experiment


def start_run(
    name: Optional[str] = None,
    *,
    experiment: Optional[ExperimentRef] = None,
    tags: Optional[Mapping[str, Any]] = None,
    nested: bool = False,
) -> ActiveRun:
    """Starts a run and makes it active; use it as `with steward.start_run() as run:`.

    The run goes to `experiment` (created if a display name is unknown), else the one of
    :func:`set_experiment`, else "Default". With `nested=True` it becomes a child of the active
    run; otherwise a run must not be active already.
    """
    client = _default_client()
    if _active and not nested:
        raise StewardError(
            f"run {_active[-1].name} is already active: end it with steward.end_run(), "
            "or pass nested=True to start a child run",
            code=grpc.StatusCode.FAILED_PRECONDITION,
        )
    if experiment is None:
        experiment = _experiment or DEFAULT_EXPERIMENT
    parent = _active[-1] if nested and _active else None
    run = ActiveRun(client.create_run(experiment, name, tags=tags, parent_run=parent), client)
    _active.append(run)
    return run


def active_run() -> Optional[ActiveRun]:
    """The innermost active run, or None."""
    return _active[-1] if _active else None


def end_run(status: Status = "FINISHED") -> None:
    """Ends the innermost active run with `status` (FINISHED, FAILED, KILLED); no-op if none."""
    if _active:
        _end(_active[-1], status)


def log_param(key: str, value: Any) -> None:
    """Logs a param (`str(value)`) to the active run."""
    run = _current()
    run.client.log_param(run, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Logs params to the active run in one call."""
    run = _current()
    run.client.log_params(run, params)


def log_metric(
    key: str,
    value: float,
    step: Optional[int] = None,
    timestamp: Union[datetime, float, None] = None,
) -> None:
    """Logs a metric point to the active run (`timestamp`: datetime or epoch seconds)."""
    run = _current()
    run.client.log_metric(run, key, value, step=step, timestamp=timestamp)


def log_metrics(metrics: Mapping[str, float], step: Optional[int] = None) -> None:
    """Logs one point of each metric, at `step`, to the active run in one call."""
    run = _current()
    run.client.log_metrics(run, metrics, step=step)


def set_tag(key: str, value: Any) -> None:
    """Sets a tag of the active run."""
    run = _current()
    run.client.set_tag(run, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Sets tags of the active run in one call."""
    run = _current()
    run.client.set_tags(run, tags)


def log_artifact(local_path: Union[str, os.PathLike], artifact_path: Optional[str] = None) -> pb.Artifact:
    """Uploads a file to the active run's artifacts as `{artifact_path}/{file name}`."""
    run = _current()
    return run.client.log_artifact(run, local_path, artifact_path)


def log_artifacts(local_dir: Union[str, os.PathLike], artifact_path: Optional[str] = None) -> List[pb.Artifact]:
    """Uploads every file under `local_dir` to the active run's artifacts."""
    run = _current()
    return run.client.log_artifacts(run, local_dir, artifact_path)


def log_input(
    name: str,
    digest: str,
    *,
    context: str = "training",
    source_uri: str = "",
    source_type: str = "",
    schema: Union[Mapping[str, Any], str, None] = None,
) -> None:
    """Records a dataset the active run used (see :meth:`Client.log_input`)."""
    run = _current()
    run.client.log_input(
        run, name, digest, context=context, source_uri=source_uri, source_type=source_type, schema=schema
    )


def search_runs(
    filter: str = "",
    experiment: Union[ExperimentRef, Sequence[ExperimentRef], None] = None,
    *,
    order_by: str = "",
    page_size: Optional[int] = None,
    show_deleted: bool = False,
) -> Iterator[pb.Run]:
    """Every matching run, page by page, of `experiment` (default: the active run's, else the
    current experiment)."""
    if experiment is None:
        if _active:
            experiment = _active[-1].experiment
        elif _experiment is not None:
            experiment = _experiment
        else:
            raise StewardError(
                "search_runs needs an experiment: pass experiment= or call steward.set_experiment()",
                code=grpc.StatusCode.FAILED_PRECONDITION,
            )
    return _default_client().search_runs(
        filter, experiment, order_by=order_by, page_size=page_size, show_deleted=show_deleted
    )


def register_model(
    source: Any,
    name: str,
    *,
    artifact_path: Optional[str] = None,
    format: str = "",
    description: str = "",
    tags: Optional[Mapping[str, Any]] = None,
) -> rpb.ModelVersion:
    """Registers a new version of model `name` from a run's artifacts or an external URI
    (see :meth:`Client.register_model`)."""
    return _default_client().register_model(
        source, name, artifact_path=artifact_path, format=format, description=description, tags=tags
    )
