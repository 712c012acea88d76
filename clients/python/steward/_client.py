"""Explicit client of Steward's gRPC API: :class:`Client` and :class:`StewardError`."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

try:
    from steward.registry.v1 import registry_pb2 as rpb
    from steward.registry.v1 import registry_pb2_grpc
    from steward.tracking.v1 import tracking_pb2 as pb
    from steward.tracking.v1 import tracking_pb2_grpc
except ModuleNotFoundError as e:  # a checkout without generated stubs
    if not (e.name or "").startswith("steward."):
        raise
    raise ImportError(
        "Steward's generated gRPC stubs are missing: `pip install ./clients/python`, or run "
        "clients/python/generate.sh to generate them in place"
    ) from e

try:  # googleapis-common-protos: the details Steward attaches to its errors
    from google.rpc import error_details_pb2, status_pb2
except ImportError:  # pragma: no cover - a dependency of the package; errors then lack fields
    error_details_pb2 = status_pb2 = None

DEFAULT_ADDRESS = "127.0.0.1:50051"
CHUNK_BYTES = 1 << 20
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # the server's limit

# Retries of UNAVAILABLE are safe: reads are idempotent and every mutation carries a request_id.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": "steward.tracking.v1.TrackingService"},
                    {"service": "steward.registry.v1.RegistryService"},
                ],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)

#: A run: its resource name `experiments/{e}/runs/{r}`, a `Run` message or an `ActiveRun`.
RunRef = Union[str, Any]
#: An experiment: resource name `experiments/{e}`, display name, or an `Experiment` message.
ExperimentRef = Union[str, "pb.Experiment"]
Status = Union[str, int]


class StewardError(Exception):
    """A failed call to Steward, or a client call that cannot be made (e.g. no active run).

    Attributes:
        code: the gRPC status code (`grpc.StatusCode`), e.g. `INVALID_ARGUMENT`.
        message: the server's message.
        reason: `google.rpc.ErrorInfo.reason`, e.g. `"RUN_NOT_FOUND"` ("" when absent).
        metadata: `google.rpc.ErrorInfo.metadata`.
        violations: `(field, description)` pairs from `google.rpc.BadRequest`.
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: str = "",
        metadata: Optional[Mapping[str, str]] = None,
        violations: Sequence[Tuple[str, str]] = (),
    ) -> None:
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = list(violations)
        super().__init__(str(self))

    @property
    def field(self) -> Optional[str]:
        """The first offending request field the server named, e.g. `"params[0].key"`."""
        return self.violations[0][0] if self.violations else None

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}" if self.code else self.message
        for field, description in self.violations:
            if f"{field}: {description}" not in self.message:
                text += f"\n  {field}: {description}"
        return text

    @classmethod
    def from_rpc_error(cls, e: grpc.RpcError) -> "StewardError":
        """Reads code, message and the `grpc-status-details-bin` trailer of a failed call."""
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        message = (e.details() if hasattr(e, "details") else None) or str(e)
        reason, metadata, violations = "", {}, []
        trailers = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
        for key, value in trailers or ():
            if key != "grpc-status-details-bin" or status_pb2 is None:
                continue
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations += [(v.field, v.description) for v in bad.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, metadata = info.reason, dict(info.metadata)
        return cls(message, code=code, reason=reason, metadata=metadata, violations=violations)


def _target(address: str) -> Tuple[str, bool]:
    """`host:port`, `http://host:port` or `https://host:port` -> (target, tls)."""
    for scheme, tls in (("http://", False), ("https://", True)):
        if address.startswith(scheme):
            return address[len(scheme):].rstrip("/"), tls
    return address, False


def _request_id() -> str:
    return str(uuid.uuid4())


def _run_name(run: RunRef) -> str:
    return run if isinstance(run, str) else run.name


def _status(status: Status) -> int:
    return pb.RunStatus.Value(status.upper()) if isinstance(status, str) else int(status)


def _timestamp(t: Union[datetime, float]) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if isinstance(t, datetime):
        ts.FromDatetime(t)
    else:
        ts.FromNanoseconds(int(t * 1e9))
    return ts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


class Client:
    """A connection to Steward, with the methods of the fluent API taking the run explicitly.

    `address` is `host:port` or `http://host:port` (`https://` for TLS), by default
    `$STEWARD_ADDR`, else 127.0.0.1:50051. `timeout` is the deadline of each call in seconds
    (none by default). Pass `channel` to use a channel of your own (e.g. with interceptors).
    The raw stubs are `client.tracking` and `client.registry`.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        channel: Optional[grpc.Channel] = None,
    ) -> None:
        self.address = address or os.environ.get("STEWARD_ADDR") or DEFAULT_ADDRESS
        self.timeout = timeout
        if channel is None:
            target, tls = _target(self.address)
            options = [
                ("grpc.service_config", _SERVICE_CONFIG),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ]
            if tls:
                channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(), options)
            else:
                channel = grpc.insecure_channel(target, options)
        self.channel = channel
        self.tracking = tracking_pb2_grpc.TrackingServiceStub(channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise StewardError.from_rpc_error(e) from e

    # Experiments

    def get_experiment(self, experiment: str) -> pb.Experiment:
        """An experiment by resource name (`experiments/...`) or display name."""
        if experiment.startswith("experiments/"):
            req = pb.GetExperimentRequest(name=experiment)
        else:
            req = pb.GetExperimentRequest(display_name=experiment)
        return self._call(self.tracking.GetExperiment, req)

    def create_experiment(
        self, name: str, *, description: str = "", tags: Optional[Mapping[str, Any]] = None
    ) -> pb.Experiment:
        """Creates an experiment with display name `name`."""
        exp = pb.Experiment(
            display_name=name,
            description=description,
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        req = pb.CreateExperimentRequest(experiment=exp, request_id=_request_id())
        return self._call(self.tracking.CreateExperiment, req)

    def get_or_create_experiment(self, name: str) -> pb.Experiment:
        """The experiment with display name `name`, created if there is none."""
        if name:  # an empty name is the create's error to report ("experiment.display_name")
            try:
                return self.get_experiment(name)
            except StewardError as e:
                if e.code != grpc.StatusCode.NOT_FOUND:
                    raise
        try:
            return self.create_experiment(name)
        except StewardError as e:  # created meanwhile by someone else
            if e.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
            return self.get_experiment(name)

    def _experiment_name(self, experiment: ExperimentRef, *, create: bool = False) -> str:
        if not isinstance(experiment, str):
            return experiment.name
        if experiment.startswith("experiments/"):
            return experiment
        if create:
            return self.get_or_create_experiment(experiment).name
        return self.get_experiment(experiment).name

    # Runs

    def create_run(
        self,
        experiment: ExperimentRef,
        name: Optional[str] = None,
        *,
        tags: Optional[Mapping[str, Any]] = None,
        parent_run: Optional[RunRef] = None,
    ) -> pb.Run:
        """Starts a RUNNING run in `experiment` (a display name is created if missing)."""
        run = pb.Run(
            run_name=name or "",
            tags={k: str(v) for k, v in (tags or {}).items()},
            parent_run=_run_name(parent_run) if parent_run else "",
        )
        req = pb.CreateRunRequest(
            parent=self._experiment_name(experiment, create=True), run=run, request_id=_request_id()
        )
        return self._call(self.tracking.CreateRun, req)

    def get_run(self, run: RunRef) -> pb.Run:
        """A run with its params, tags, latest metrics and inputs."""
        return self._call(self.tracking.GetRun, pb.GetRunRequest(name=_run_name(run)))

    def end_run(self, run: RunRef, status: Status = "FINISHED") -> pb.Run:
        """Sets the run's status (`FINISHED`, `FAILED`, `KILLED`, ...); the server sets end_time."""
        req = pb.UpdateRunRequest(
            run=pb.Run(name=_run_name(run), status=_status(status)),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            request_id=_request_id(),
        )
        return self._call(self.tracking.UpdateRun, req)

    def search_runs(
        self,
        filter: str = "",
        experiment: Union[ExperimentRef, Sequence[ExperimentRef], None] = None,
        *,
        order_by: str = "",
        page_size: Optional[int] = None,
        show_deleted: bool = False,
    ) -> Iterator[pb.Run]:
        """Every run of `experiment` (one or a list) matching `filter`, fetched page by page.

        The filter language is SearchRuns', e.g. `metrics.acc > 0.9 AND params.lr = '0.01'`.
        """
        if experiment is None:
            raise StewardError("search_runs needs an experiment")
        experiments = [experiment] if isinstance(experiment, (str, pb.Experiment)) else experiment
        req = pb.SearchRunsRequest(
            experiments=[self._experiment_name(e) for e in experiments],
            filter=filter,
            order_by=order_by,
            page_size=page_size or 0,
            show_deleted=show_deleted,
        )

        def pages() -> Iterator[pb.Run]:
            while True:
                resp = self._call(self.tracking.SearchRuns, req)
                yield from resp.runs
                if not resp.next_page_token:
                    return
                req.page_token = resp.next_page_token

        return pages()

    # Run data

    def log_batch(
        self,
        run: RunRef,
        *,
        metrics: Iterable[pb.MetricPoint] = (),
        params: Optional[Mapping[str, Any]] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> int:
        """Logs metric points, params and tags in one atomic LogRunData; returns points written.

        Param and tag values are sent as `str(value)`.
        """
        req = pb.LogRunDataRequest(
            run=_run_name(run),
            metrics=list(metrics),
            params=[pb.Param(key=k, value=str(v)) for k, v in (params or {}).items()],
            tags=[pb.Tag(key=k, value=str(v)) for k, v in (tags or {}).items()],
            request_id=_request_id(),
        )
        if not (req.metrics or req.params or req.tags):
            return 0
        return self._call(self.tracking.LogRunData, req).metric_points_written

    def log_param(self, run: RunRef, key: str, value: Any) -> None:
        self.log_batch(run, params={key: value})

    def log_params(self, run: RunRef, params: Mapping[str, Any]) -> None:
        self.log_batch(run, params=params)

    def log_metric(
        self,
        run: RunRef,
        key: str,
        value: float,
        step: Optional[int] = None,
        timestamp: Union[datetime, float, None] = None,
    ) -> None:
        """Logs one point; `timestamp` is a datetime or epoch seconds (default: server time)."""
        self.log_metrics(run, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self,
        run: RunRef,
        metrics: Mapping[str, float],
        step: Optional[int] = None,
        timestamp: Union[datetime, float, None] = None,
    ) -> None:
        """Logs one point per metric, all at `step` (default 0), in one call."""
        ts = _timestamp(timestamp) if timestamp is not None else None
        points = [
            pb.MetricPoint(key=k, value=float(v), step=step or 0, timestamp=ts)
            for k, v in metrics.items()
        ]
        self.log_batch(run, metrics=points)

    def set_tag(self, run: RunRef, key: str, value: Any) -> None:
        self.log_batch(run, tags={key: value})

    def set_tags(self, run: RunRef, tags: Mapping[str, Any]) -> None:
        self.log_batch(run, tags=tags)

    def log_input(
        self,
        run: RunRef,
        name: str,
        digest: str,
        *,
        context: str = "training",
        source_uri: str = "",
        source_type: str = "",
        schema: Union[Mapping[str, Any], str, None] = None,
    ) -> None:
        """Records a dataset the run used (`digest` e.g. `"sha256:..."`; `schema` as JSON)."""
        dataset = pb.Dataset(
            name=name,
            digest=digest,
            source_uri=source_uri,
            source_type=source_type,
            schema_json=schema if isinstance(schema, str) or schema is None else json.dumps(schema),
        )
        req = pb.LogRunInputsRequest(
            run=_run_name(run),
            inputs=[pb.DatasetInput(dataset=dataset, context=context)],
            request_id=_request_id(),
        )
        self._call(self.tracking.LogRunInputs, req)

    # Artifacts

    def log_artifact(
        self, run: RunRef, local_path: Union[str, os.PathLike], artifact_path: Optional[str] = None
    ) -> pb.Artifact:
        """Uploads a file as `{artifact_path}/{file name}` of the run's artifacts, streamed in
        chunks; the server checks the content against the file's sha256."""
        path = Path(local_path)
        dest = f"{artifact_path.strip('/')}/{path.name}" if artifact_path else path.name
        header = pb.ArtifactHeader(
            run=_run_name(run),
            path=dest,
            content_type=mimetypes.guess_type(path.name)[0] or "",
            request_id=_request_id(),
            expected_sha256=_sha256(path),
        )

        def parts() -> Iterator[pb.UploadArtifactRequest]:
            yield pb.UploadArtifactRequest(header=header)
            with path.open("rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield pb.UploadArtifactRequest(chunk=chunk)

        return self._call(self.tracking.UploadArtifact, parts())

    def log_artifacts(
        self, run: RunRef, local_dir: Union[str, os.PathLike], artifact_path: Optional[str] = None
    ) -> List[pb.Artifact]:
        """Uploads every file under `local_dir`, keeping the layout, below `artifact_path`."""
        root = Path(local_dir)
        out = []
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            parent = f.parent.relative_to(root).as_posix()
            parts = [p for p in (artifact_path and artifact_path.strip("/"), parent) if p and p != "."]
            out.append(self.log_artifact(run, f, "/".join(parts) or None))
        return out

    def download_artifact(self, run: RunRef, path: str) -> bytes:
        """The content of one of the run's artifacts."""
        req = pb.DownloadArtifactRequest(run=_run_name(run), path=path)
        try:
            return b"".join(m.chunk for m in self.tracking.DownloadArtifact(req, timeout=self.timeout))
        except grpc.RpcError as e:
            raise StewardError.from_rpc_error(e) from e

    # Registry

    def register_model(
        self,
        source: Union[RunRef, str],
        name: str,
        *,
        artifact_path: Optional[str] = None,
        format: str = "",
        description: str = "",
        tags: Optional[Mapping[str, Any]] = None,
    ) -> rpb.ModelVersion:
        """Creates the next version of registered model `name` (creating the model if needed).

        `source` is a run (its `artifact_path` directory, default "model", holds the model),
        `"runs:/experiments/{e}/runs/{r}/{path}"`, or an external URI such as `s3://...`.
        """
        version = rpb.ModelVersion(
            format=format, description=description, tags={k: str(v) for k, v in (tags or {}).items()}
        )
        if isinstance(source, str) and source.startswith("runs:/"):
            parts = source[len("runs:/"):].strip("/").split("/")
            version.source_run = "/".join(parts[:4])
            version.artifact_path = artifact_path or "/".join(parts[4:]) or "model"
        elif isinstance(source, str) and "://" in source:
            version.source_uri = source
        else:
            version.source_run = _run_name(source)
            version.artifact_path = artifact_path or "model"
        model = name if name.startswith("registeredModels/") else f"registeredModels/{name}"
        try:
            self._call(self.registry.GetRegisteredModel, rpb.GetRegisteredModelRequest(name=model))
        except StewardError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
            try:
                self._call(
                    self.registry.CreateRegisteredModel,
                    rpb.CreateRegisteredModelRequest(
                        registered_model=rpb.RegisteredModel(name=model), request_id=_request_id()
                    ),
                )
            except StewardError as e2:
                if e2.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        req = rpb.CreateModelVersionRequest(
            parent=model, model_version=version, request_id=_request_id()
        )
        return self._call(self.registry.CreateModelVersion, req)
