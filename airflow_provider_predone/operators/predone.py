"""
Operators for the Prediction One model lifecycle: train, deploy a prediction API, score,
retrain, gate and switch, plus listing and clean-up.

Module-level imports stay light (no HTTP client libraries): DAG files import this module
at every parse, so the hook and triggers are imported only when a task runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn, get_args

from airflow_provider_predone import assets, files, lineage
from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    InvalidInputError,
    JobNotFinishedError,
    MetricNotFoundError,
    NotFoundError,
    OlderModelError,
    QualityGateRejectedError,
    StaleBaselineError,
)
from airflow_provider_predone.files import ArchiveLimits as ArchiveLimits  # re-exported for result_limits
from airflow_provider_predone.metrics import (
    GateVerdict,
    MetricsReader,
    read_metrics,
    verdict_of,
)
from airflow_provider_predone.metrics import (
    RetrainResult as RetrainResult,  # re-exported: quality gates take one (example_dags/predone_retrain_and_switch.py)
)
from airflow_provider_predone.metrics import (
    metric_gate as metric_gate,  # re-exported: DAGs import it from here
)
from airflow_provider_predone.operators._xcom import model_id_value
from airflow_provider_predone.operators.base import (
    Finished,
    JobOperator,
    ProviderOperator,
    TemplatedId,
    task_result,
)
from airflow_provider_predone.plugins.links import ModelPageLink
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import Phase, path_id
from airflow_provider_predone.protocol.fields import sendable_name
from airflow_provider_predone.waiting import POLL_INTERVAL, TIMEOUT

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_predone._task_state import TaskState
    from airflow_provider_predone.hooks.predone import PredictionOneHook
    from airflow_provider_predone.triggers.base import JobStatus, StatusTrigger

#: A model found in the model list counts as ours if created no earlier than this before we asked.
MODEL_LOOKUP_SLACK = timedelta(minutes=10)
#: What a refused quality gate does to the switch task.
OnRefusal = Literal["fail", "skip"]
ON_REFUSAL: tuple[OnRefusal, ...] = get_args(OnRefusal)


class PredictionOneBaseOperator(ProviderOperator):
    """
    Shared plumbing of the Prediction One operators: the hook and result archives.

    :param predone_conn_id: the ``predone`` connection.
    """

    #: The limits on result archives (set by the operators that open results).
    result_limits: ArchiveLimits | None = None
    #: What the id a result is kept under is called, for errors (``<result_dir>/<id>``).
    result_id_field = "retrain_job_id"

    def __init__(self, *, predone_conn_id: str = "predone_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predone_conn_id = predone_conn_id

    @property
    def conn_id(self) -> str:
        return self.predone_conn_id

    @cached_property
    def hook(self) -> PredictionOneHook:
        from airflow_provider_predone.hooks.predone import PredictionOneHook

        return PredictionOneHook(predone_conn_id=self.predone_conn_id)

    #: What the task's run returned and the connection's service, kept by :meth:`finished` for
    #: ``get_openlineage_facets_on_complete``: the OpenLineage provider calls it in a forked process
    #: that can reach neither XCom nor the connection.
    run_result: dict[str, Any] | None = None
    run_service: str | None = None

    def finished(self, result: dict[str, Any]) -> dict[str, Any]:
        """Keep the task's ``result`` and the connection's service (for lineage), and return ``result``."""
        self.run_result = result
        try:
            self.run_service = self.hook.connection_info.service
        except Exception:  # lineage must never fail a task: without a service, none is reported
            self.run_service = None
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """
        Called by the OpenLineage provider, when installed: an operator that reads or writes
        datasets says which in its own override (see :mod:`..lineage`); this one reports none.
        """
        return lineage.no_lineage()

    @contextmanager
    def open_result(
        self,
        url: str,
        label: str,
        result_dir: str | None,
        job_id: str,
        metrics_reader: MetricsReader | None = None,
    ) -> Iterator[RetrainResult]:
        """
        Download a result zip, extract it safely and find the metrics in it (see :mod:`..metrics`).

        The archive is held to :attr:`result_limits`; ``<result_dir>/<job_id>`` must resolve
        under ``result_dir`` (checked before the download). Without ``result_dir`` the extracted
        files live only inside this block, so a quality gate or reader given the result's
        ``path`` must run inside it.
        """
        limits = files.archive_limits(self.result_limits)
        kept = files.result_folder(result_dir, job_id, self.result_id_field) if result_dir else None
        with tempfile.TemporaryDirectory(prefix="predone-result-") as scratch:
            archive = Path(scratch) / "result.zip"
            self.hook.download(url, archive, label=label)
            target = kept or Path(scratch) / "extracted"
            members = files.safe_extract(archive, target, limits=limits)
            self.log.info("%s: extracted %d file(s) to %s", label, len(members), target if result_dir else "a temp dir")
            found = read_metrics(target, metrics_reader, max_json_bytes=limits.max_json_bytes)
            if found.metrics is None:
                self.log.warning(
                    "%s: no metric found in the archive (members: %s); pass metrics_reader= to read it",
                    label,
                    ", ".join(found.members[:40]),
                )
            else:
                self.log.info(
                    "%s: metrics %s, previous %s (from %s)",
                    label,
                    found.metrics,
                    found.previous_metrics,
                    ", ".join(found.sources),
                )
            yield RetrainResult(
                path=target,
                metrics=found.metrics,
                previous_metrics=found.previous_metrics,
                summary=found.summary,
                members=found.members,
            )


class PredictionOneJobOperator(PredictionOneBaseOperator, JobOperator):
    """A Prediction One operator that starts a remote job and can wait for it (see :class:`JobOperator`)."""

    def observe(self, trigger: StatusTrigger) -> JobStatus:
        """The trigger's own status check (request and reading), sent through the sync hook."""
        from airflow_provider_predone.triggers.predone import _PredictionOneTrigger

        assert isinstance(trigger, _PredictionOneTrigger)
        return trigger.fetch_sync(self.hook)


class DataInput(NamedTuple):
    """The training (and evaluation) data of a training or a retraining, checked and ready to read."""

    encoding: str
    train: files.DataSource
    header: list[str]
    evaluation: files.DataSource | None
    eval_header: list[str] | None


class _ModelDataOperator(PredictionOneJobOperator):
    """
    What training and retraining share: their data (train and evaluation CSVs in an encoding,
    checked, transcoded to UTF-8 for the vendor) and their result archive (metrics).
    """

    def __init__(
        self,
        *,
        train_data: Any,
        eval_data: Any = None,
        result_dir: str | None = None,
        result_limits: ArchiveLimits | None = None,
        encoding: str = "utf-8",
        metrics_reader: MetricsReader | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.train_data = train_data
        self.eval_data = eval_data
        self.result_dir = result_dir
        self.result_limits = files.archive_limits(result_limits)
        self.encoding = encoding
        self.metrics_reader = metrics_reader

    def data_input(self) -> DataInput:
        """The encoding and the data sources with their headers (read, nothing sent)."""
        encoding = files.check_encoding(self.encoding)
        train = files.resolve("train_data", self.train_data)
        evaluation = None if self.eval_data is None else files.resolve("eval_data", self.eval_data)
        return DataInput(
            encoding,
            train,
            files.read_csv_header(train, encoding),
            evaluation,
            None if evaluation is None else files.read_csv_header(evaluation, encoding),
        )

    def transcode(
        self, data: DataInput, scratch: Path, *, target: str | None = None, positive: str | None = None
    ) -> tuple[files.DataSource, files.DataSource | None]:
        """The pass over the data before it is sent: UTF-8 for the vendor, and a binary ``tv`` that occurs."""
        train = files.prepare_upload(
            data.train, scratch / "train", encoding=data.encoding, target=target, positive=positive
        )
        if data.evaluation is None:
            return train, None
        return train, files.prepare_upload(data.evaluation, scratch / "eval", encoding=data.encoding)

    def read_result(self, url: str | None, label: str, job_id: str) -> RetrainResult | None:
        """The job's result archive, when it has one, opened as :meth:`open_result` does (kept under ``result_dir``)."""
        if not url:
            return None
        with self.open_result(url, label, self.result_dir, job_id, self.metrics_reader) as result:
            return result

    def result_fields(self, result: RetrainResult | None) -> dict[str, Any]:
        """What the task's result says of the archive: where it is kept and its metrics."""
        return {
            "result_path": str(result.path) if result and self.result_dir else None,
            "metrics": result.metrics if result else None,
        }

    def data_lineage(self) -> dict[str, Any]:
        """The data part of the lineage: the CSVs read and their encoding."""
        return {"data": (self.train_data, self.eval_data), "encoding": self.encoding}


# --- training -----------------------------------------------------------------------------------


class PredictionOneTrainOperator(_ModelDataOperator):
    """
    Train a Prediction One model: validate, upload, create the model, wait, fetch the result.

    The config is checked against the vendor's rules and the data against the config before
    anything is uploaded. A retried task re-attaches to its training instead of starting a
    second one.

    :param train_data: the training CSV: a local path or an object storage URL / ``ObjectStoragePath``.
    :param model_name: the model's name in Prediction One.
    :param config: the training config (``tc``, ``tt``, ``tv``, ``cv``, ...; see the vendor reference).
    :param eval_data: optional evaluation CSV.
    :param column_info: optional column types: a mapping column → ``string``/``float``/``date``
        (written as the vendor's UTF-8-with-BOM CSV) or a path to such a CSV.
    :param encoding: the text encoding of ``train_data`` and ``eval_data``: ``utf-8`` (with or
        without BOM), ``cp932`` (Shift-JIS, from Japanese Excel) or any Python codec name; other
        than UTF-8, they are transcoded to UTF-8 while uploaded.
    :param wait_for_completion: wait until training ends (else return after it started).
    :param deferrable: wait in the triggerer instead of on a worker.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait for training, seconds or a timedelta.
    :param result_dir: where to keep the extracted result (under ``<result_dir>/<external_process_id>``);
        without it the result is read for its metrics and discarded.
    :param metrics_reader: ``callable(extracted_folder) -> {name: value}``, for result archives
        whose metrics discovery cannot find (see :mod:`airflow_provider_predone.metrics`).
    :param result_limits: the limits a result archive is held to, an
        :class:`~airflow_provider_predone.files.ArchiveLimits` (members, total bytes,
        compression ratio, largest JSON parsed); default ``ArchiveLimits()``.
    :param success_statuses: replace the statuses meaning "finished" (default ``finished``).
    :param failure_statuses: replace the statuses meaning "failed".
    :param running_statuses: the statuses meaning "still running"; when given, any other
        status fails at once.
    :param predone_conn_id: the ``predone`` connection.
    :return: ``{"model_id", "external_process_id", "status", "result_path", "metrics"}``.
    """

    template_fields: Sequence[str] = (
        "train_data",
        "eval_data",
        "model_name",
        "config",
        "column_info",
        "result_dir",
    )
    template_fields_renderers = {"config": "json", "column_info": "json"}
    ui_color = "#e8f0fe"
    operator_extra_links = (ModelPageLink(),)
    task_state = "training"
    event_ids = ("external_process_id",)
    result_id_field = "external_process_id"
    asset_alias = assets.MODEL_UPDATES

    def __init__(
        self,
        *,
        train_data: Any,
        model_name: str,
        config: Mapping[str, Any],
        eval_data: Any = None,
        column_info: Mapping[str, str] | str | None = None,
        result_dir: str | None = None,
        result_limits: ArchiveLimits | None = None,
        encoding: str = "utf-8",
        metrics_reader: MetricsReader | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = POLL_INTERVAL,
        timeout: float | timedelta = TIMEOUT,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            train_data=train_data,
            eval_data=eval_data,
            result_dir=result_dir,
            result_limits=result_limits,
            encoding=encoding,
            metrics_reader=metrics_reader,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )
        self.model_name = model_name
        self.config = config
        self.column_info = column_info

    def prepare(self, scratch: Path) -> tuple[dict[str, Any], files.DataSource, files.DataSource | None, Any]:
        if not isinstance(self.model_name, str) or not self.model_name.strip():
            raise InvalidInputError(f"model_name must be a non-empty string, got {self.model_name!r}")
        sendable_name(self.model_name, "model_name")
        config = api.validate_config(self.config)
        data = self.data_input()
        files.check_columns(data.train, data.header, api.config_columns(config))
        if data.evaluation is not None and data.eval_header is not None:
            # A forecast is evaluated at its times, per series: those columns must be there too.
            needed = {k: v for k, v in api.config_columns(config).items() if k in ("tc", "tsc", "tss")}
            files.check_columns(data.evaluation, data.eval_header, needed)
        column_info = None
        if self.column_info is not None:
            column_info = files.column_info_rows(self.column_info)
            if isinstance(column_info, list):
                files.check_columns(data.train, data.header, {f"column_info[{c!r}]": c for c, _ in column_info})
        # Still before anything is sent: a file that could only fail the training fails here.
        train, evaluation = self.transcode(data, scratch, target=config["tc"], positive=config.get("tv"))
        return config, train, evaluation, column_info

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"training {job['external_process_id']}"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        try:
            self.hook.get_train_status(job["external_process_id"])
        except NotFoundError:
            return False
        return True

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        config, train, evaluation, column_info = prepared
        # The models of this name before ours is requested: afterwards, ours is the one new model
        # of the name (not merely the newest, which a concurrent training of that name may own).
        existing = self.hook.model_ids_named(self.model_name)
        urls = self.hook.get_upload_urls("csv")
        job = {
            "external_process_id": urls.external_process_id,
            "requested_at": datetime.now(UTC).isoformat(),
            "existing_model_ids": existing,
        }
        # Recorded before the model is created: a retry after a crash anywhere below finds it.
        record.set(job)
        self.hook.upload(urls.learn_data_set_upload_url, train, label=f"Training data {train.name}")
        if evaluation is not None:
            self.hook.upload(urls.eval_data_set_upload_url, evaluation, label=f"Evaluation data {evaluation.name}")
        if column_info is not None:
            self._upload_column_info(urls.column_info_upload_url, column_info)
        self.hook.create_model(urls.external_process_id, self.model_name, config)
        self.log.info("Training %s of model %r started", urls.external_process_id, self.model_name)
        return job

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

        return PredictionOneTrainTrigger(external_process_id=job["external_process_id"], **self.trigger_kwargs())

    def _find_model(self, context: Context, external_process_id: str, requested_at: Any) -> int | None:
        """
        The model this training made, when the status answer does not say: the one model of
        its name that did not exist before the request (recorded with the retry record).
        """
        recorded = self.record(context).get() or {}
        if recorded.get("external_process_id") != external_process_id:
            recorded = {}
        existing = recorded.get("existing_model_ids")
        if isinstance(existing, list):
            model_id = self.hook.find_model_id(self.model_name, existing=existing)
        else:
            # A record written before the models were remembered: the newest of the name, as then.
            since = api.parse_datetime(requested_at or recorded.get("requested_at"))
            model_id = self.hook.find_model_id(self.model_name, since - MODEL_LOOKUP_SLACK if since else None)
        if model_id is None:
            self.log.warning(
                "Training %s finished, but no new model called %r is listed", external_process_id, self.model_name
            )
        return model_id

    def _upload_column_info(self, url: str, column_info: Any) -> None:
        if isinstance(column_info, files.DataSource):
            self.hook.upload(url, column_info, label="Column info")
            return
        with tempfile.TemporaryDirectory(prefix="predone-column-info-") as scratch:
            path = files.write_column_info(column_info, Path(scratch) / "column_info.csv")
            self.hook.upload(url, files.resolve("column_info", path), label="Column info")

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        external_process_id = event["external_process_id"]
        status = self.hook.get_train_status(external_process_id)
        # requested_at: a task deferred by an earlier release resumes with it
        model_id = status.model_id or self._find_model(context, external_process_id, kwargs.get("requested_at"))
        label = f"Training result (external_process_id={external_process_id})"
        result = self.read_result(status.result_url, label, external_process_id)
        metrics = result.metrics if result else None
        self.log.info("Training %s finished: model_id=%s metrics=%s", external_process_id, model_id, metrics)
        events = []
        if model_id is not None:
            extra = {
                "event": "trained",
                "external_process_id": external_process_id,
                "metrics": metrics,
                "version": archive_versions(result.summary if result else None, model_id).get("retrained_version"),
            }
            events.append((assets.model_uri(self.hook.connection_info.service, model_id), extra))
        fields = {"model_id": model_id, "external_process_id": external_process_id, "status": status.status}
        return task_result({**fields, **self.result_fields(result)}), events

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The training and evaluation CSVs → the model made, with its metrics."""
        if self.run_result is None or self.run_service is None:
            return lineage.no_lineage()
        return lineage.train_lineage(
            self.run_service,
            **self.data_lineage(),
            model_id=self.run_result.get("model_id"),
            metrics=self.run_result.get("metrics"),
            external_process_id=self.run_result.get("external_process_id"),
        )


# --- retraining -----------------------------------------------------------------------------------


class PredictionOneRetrainOperator(_ModelDataOperator):
    """
    Retrain a model with new data (and optional evaluation data), exactly once.

    With ``eval_data`` the vendor's ``train_src/`` + ``eval_src/`` zip is built (streamed, in a
    temp dir). The retrain job id is recorded before the upload — the upload starts the job —
    so a retried task re-attaches to that job instead of uploading again.

    :param model_id: the model to retrain (an int, a template, or the train task's XCom).
    :param train_data: the new training CSV (local path or object storage).
    :param eval_data: optional evaluation CSV.
    :param upload_filename: the file name announced to the service (defaults to the train
        file's name, or its stem + ``.zip`` with evaluation data). Non-ASCII names are fine.
    :param result_dir: where to keep the extracted result (under ``<result_dir>/<retrain_job_id>``).
    :param metrics_reader: ``callable(extracted_folder) -> {name: value}`` or ``(new, previous)``.
    :param result_limits: the limits a result archive is held to, an
        :class:`~airflow_provider_predone.files.ArchiveLimits` (members, total bytes,
        compression ratio, largest JSON parsed); default ``ArchiveLimits()``.
    :param encoding: the text encoding of ``train_data`` and ``eval_data`` (``utf-8``, ``cp932``,
        any Python codec name); other than UTF-8, they are transcoded to UTF-8 before the upload.
    :return: ``{"retrain_job_id", "model_id", "status", "result_path", "metrics", "previous_metrics"}``.
    """

    template_fields: Sequence[str] = ("model_id", "train_data", "eval_data", "upload_filename", "result_dir")
    ui_color = "#fef7e0"
    operator_extra_links = (ModelPageLink(),)
    task_state = "retrain_job"
    event_ids = ("retrain_job_id", "model_id")
    asset_alias = assets.MODEL_UPDATES

    def __init__(
        self,
        *,
        model_id: TemplatedId,
        train_data: Any,
        eval_data: Any = None,
        upload_filename: str | None = None,
        result_dir: str | None = None,
        result_limits: ArchiveLimits | None = None,
        encoding: str = "utf-8",
        metrics_reader: MetricsReader | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = POLL_INTERVAL,
        timeout: float | timedelta = TIMEOUT,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            train_data=train_data,
            eval_data=eval_data,
            result_dir=result_dir,
            result_limits=result_limits,
            encoding=encoding,
            metrics_reader=metrics_reader,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )
        self.model_id = model_id
        self.upload_filename = upload_filename

    def prepare(self, scratch: Path) -> tuple[int, DataInput, str, Path]:
        model_id = model_id_value(self.model_id)
        data = self.data_input()
        if data.evaluation is not None and data.eval_header is not None:
            missing = [c for c in data.header if c not in data.eval_header]
            if missing:
                raise InvalidInputError(f"eval_data: {data.evaluation} lacks the training data's column(s) {missing}")
        default_name = data.train.name if data.evaluation is None else f"{Path(data.train.name).stem}.zip"
        filename = self.upload_filename or default_name
        suffix = ".zip" if data.evaluation is not None else ".csv"
        if any(c in filename for c in "/\\") or filename in (".", "..") or not filename.lower().endswith(suffix):
            raise InvalidInputError(
                f"upload_filename must be a plain file name ending in {suffix} (no '/' or '\\'), got {filename!r}"
            )
        sendable_name(filename, "upload_filename")
        self._check_positive_value(model_id, data.train, data.encoding)
        return model_id, data, filename, scratch

    def _check_positive_value(self, model_id: int, train: files.DataSource, encoding: str) -> None:
        """
        A binary model's ``tv`` must occur in the new data, or the retraining (paid) could only
        fail. The model's config comes from the model list; this reads the file once more.
        """
        try:
            config = next((m.get("config") for m in self.hook.list_models() if m.get("model_id") == model_id), None)
        except ApiError as exc:  # e.g. a connection holding only a retrain key: retrain unchecked, as before
            from airflow_provider_predone.exceptions import reason  # the task goes on: no "not retried"

            self.log.info("Model %s's config could not be read (%s): its tv is not checked", model_id, reason(exc))
            return
        if isinstance(config, Mapping) and config.get("tt") == "binary_classification" and config.get("tv"):
            tc, tv = str(config.get("tc")), str(config["tv"])
            files.prepare_upload(train, None, encoding=encoding, target=tc, positive=tv)

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"retrain job {job['retrain_job_id']}"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        model_id = prepared[0]
        return job.get("model_id") == model_id and self.hook.retrain_started(job["retrain_job_id"], model_id)

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        model_id, data, filename, scratch = prepared
        train, evaluation = self.transcode(data, scratch)
        source = train
        if evaluation is not None:
            archive = files.build_retrain_zip(train, evaluation, scratch / filename)
            source = files.resolve("retrain archive", archive, extensions=(".zip",))
        upload = self.hook.get_retrain_upload_url(model_id, filename)
        job = {"retrain_job_id": upload.retrain_job_id, "model_id": model_id}
        # Recorded before the upload: completing the upload starts the job.
        record.set(job)
        self.hook.upload_retrain_data(upload, model_id, source)
        self.log.info("Retrain job %s of model %s started", upload.retrain_job_id, model_id)
        return job

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.predone import PredictionOneRetrainTrigger

        return PredictionOneRetrainTrigger(
            retrain_job_id=job["retrain_job_id"], model_id=job["model_id"], **self.trigger_kwargs()
        )

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        retrain_job_id, model_id = event["retrain_job_id"], int(event["model_id"])
        status = self.hook.get_retrain_status(retrain_job_id, model_id)
        label = f"Retrain result (retrain_job_id={retrain_job_id}, model_id={model_id})"
        result = self.read_result(status.download_url, label, retrain_job_id)
        previous_metrics = result.previous_metrics if result else None
        fields = self.result_fields(result)
        extra = {
            "event": "retrained",
            "retrain_job_id": retrain_job_id,
            "metrics": fields["metrics"],
            "previous_metrics": previous_metrics,
            **archive_versions(result.summary if result else None, model_id),
        }
        uri = assets.model_uri(self.hook.connection_info.service, model_id)
        ids = {"retrain_job_id": retrain_job_id, "model_id": model_id, "status": status.status}
        return task_result({**ids, **fields, "previous_metrics": previous_metrics}), [(uri, extra)]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The new CSVs → the model retrained, with its new and previous metrics and the job's id."""
        if self.run_result is None or self.run_service is None:
            return lineage.no_lineage()
        return lineage.retrain_lineage(
            self.run_service,
            **self.data_lineage(),
            model_id=self.run_result["model_id"],
            retrain_job_id=self.run_result.get("retrain_job_id"),
            metrics=self.run_result.get("metrics"),
            previous_metrics=self.run_result.get("previous_metrics"),
        )


class PredictionOneSwitchModelOperator(PredictionOneBaseOperator):
    """
    Switch a model's prediction API to its retrained version, optionally behind a quality gate.

    The gate's verdict (metric, both values, threshold) is logged whether it accepts or
    refuses, and recorded with both sets of metrics in the XCom (``quality_gate``,
    ``metrics``, ``previous_metrics``) and in the asset event's extra.

    Before switching, the version served now is read (the model's prediction APIs): a retrained
    model older than it is refused with :class:`OlderModelError` unless ``allow_older``, and a
    gate whose "previous" metrics are not the served version's is refused with
    :class:`StaleBaselineError` (see the retrain guide).

    :param retrain_job_id: the finished retrain job (or the retrain task's XCom dict).
    :param model_id: the model (its retrain key authorises the switch); taken from
        ``retrain_job_id`` when that is the retrain task's XCom dict.
    :param quality_gate: ``callable(RetrainResult) -> bool`` (or a :class:`GateVerdict`, as
        :func:`metric_gate` returns); a refusal switches nothing.
    :param on_refusal: ``"fail"`` (default: the task fails with
        :class:`QualityGateRejectedError`) or ``"skip"`` (the task is skipped, the reason
        logged, so downstream tasks can react).
    :param metrics_reader: ``callable(extracted_folder) -> {name: value}`` or ``(new,
        previous)``, for result archives whose metrics discovery cannot find.
    :param result_dir: where to keep the downloaded result the gate looked at.
    :param result_limits: the limits a result archive is held to, an
        :class:`~airflow_provider_predone.files.ArchiveLimits` (members, total bytes,
        compression ratio, largest JSON parsed); default ``ArchiveLimits()``.
    :param allow_older: switch even to a model older than the one served now (by default such
        a switch is refused, as ``on_refusal`` says: an older retrain finishing last must not
        replace a newer one).
    :param predone_conn_id: the ``predone`` connection.
    :return: ``{"retrain_job_id", "model_id", "switched", "quality_gate", "metrics",
        "previous_metrics", "retrained_version", "previous_version", "served_version"}``.
    """

    template_fields: Sequence[str] = ("retrain_job_id", "model_id", "result_dir")
    ui_color = "#e6f4ea"
    operator_extra_links = (ModelPageLink(),)
    asset_alias = assets.SERVING_UPDATES

    def __init__(
        self,
        *,
        retrain_job_id: TemplatedId,
        model_id: TemplatedId | None = None,
        quality_gate: Callable[[RetrainResult], Any] | None = None,
        on_refusal: OnRefusal = "fail",
        metrics_reader: MetricsReader | None = None,
        result_dir: str | None = None,
        result_limits: ArchiveLimits | None = None,
        allow_older: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(allow_older, bool):
            raise InvalidInputError(f"allow_older must be True or False, got {allow_older!r}")
        if on_refusal not in ON_REFUSAL:
            raise InvalidInputError(f"on_refusal must be one of {list(ON_REFUSAL)}, got {on_refusal!r}")
        if quality_gate is not None and not callable(quality_gate):
            raise InvalidInputError(f"quality_gate must be a callable, got {quality_gate!r}")
        if metrics_reader is not None and not callable(metrics_reader):
            raise InvalidInputError(f"metrics_reader must be a callable, got {metrics_reader!r}")
        self.retrain_job_id = retrain_job_id
        self.model_id = model_id
        self.quality_gate = quality_gate
        self.on_refusal = on_refusal
        self.metrics_reader = metrics_reader
        self.result_dir = result_dir
        self.result_limits = files.archive_limits(result_limits)
        self.allow_older = allow_older

    def finished_retrain(self) -> tuple[str, int, api.RetrainStatus]:
        """The retrain job and model ids, and the job's status (it must have succeeded)."""
        job: Mapping[str, Any] = self.retrain_job_id if isinstance(self.retrain_job_id, Mapping) else {}
        retrain_job_id = path_id(job.get("retrain_job_id", self.retrain_job_id), "retrain_job_id")
        model_id = model_id_value(self.model_id if self.model_id is not None else job.get("model_id"))
        status = self.hook.get_retrain_status(retrain_job_id, model_id)
        if api.RETRAIN_STATUSES.classify(status.status) is not Phase.SUCCESS:
            raise JobNotFinishedError(
                f"Retrain Model Switch (retrain_job_id={retrain_job_id}, model_id={model_id}): the job is "
                f"{status.status!r}, not finished, so the model cannot be switched",
                endpoint="Retrain Model Switch",
                vendor_message="Retrain job is not finished.",
            )
        return retrain_job_id, model_id, status

    def execute(self, context: Context) -> Any:
        record, _ = self.gate(context)
        return self.switch(context, record)

    #: how the refusal of a retrain job without a result archive begins
    no_archive = "The quality gate cannot judge {what}"

    def gate(self, context: Context) -> tuple[dict[str, Any], GateVerdict | None]:
        """
        Every check before a switch: the retrain job finished, its result archive (versions,
        metrics), the version served now, the quality gate. A refusal ends the task as
        ``on_refusal`` says; else the record to switch with, and the gate's verdict.
        """
        retrain_job_id, model_id, status = self.finished_retrain()
        what = f"retrain job {retrain_job_id} of model {model_id}"
        record: dict[str, Any] = {"retrain_job_id": retrain_job_id, "model_id": model_id}
        if not self.compares_metrics and self.allow_older:
            return record, None  # nothing to check against the served model
        if not status.download_url:
            if self.compares_metrics:
                raise MetricNotFoundError(
                    f"{self.no_archive.format(what=what)}: its status answer has no download_url (no result "
                    "archive); nothing was switched"
                )
            self.check_served(context, record, what)
            return record, None
        # Downloaded even without a gate: the archive says which version the retraining made.
        with self.open_result(
            status.download_url, f"Retrain result ({what})", self.result_dir, retrain_job_id, self.metrics_reader
        ) as result:
            record.update(archive_versions(result.summary, model_id))
            if self.compares_metrics:
                record.update(metrics=result.metrics, previous_metrics=result.previous_metrics, **self.reviewed(result))
            self.check_served(context, record, what)
            verdict = verdict_of(self.quality_gate, result) if self.quality_gate is not None else None
        if verdict is not None:
            record["quality_gate"] = verdict.record()
            self.log.info(
                "Quality gate on %s: %s — %s (metrics %s, previous %s)",
                what,
                "ACCEPTED" if verdict.accepted else "REFUSED",
                verdict.reason,
                result.metrics,
                result.previous_metrics,
            )
            if not verdict.accepted:
                refusal = f"The quality gate refused {what}: {verdict.reason}; nothing was switched"
                self.not_switched(context, record, QualityGateRejectedError(refusal))
        return record, verdict

    def reviewed(self, result: RetrainResult) -> dict[str, Any]:
        """What else the record keeps of the result archive when metrics are compared (a review: data sizes)."""
        return {}

    @property
    def compares_metrics(self) -> bool:
        """Whether the decision compares with the archive's "previous" metrics (a gate's does)."""
        return self.quality_gate is not None

    def check_served(self, context: Context, record: dict[str, Any], what: str) -> None:
        """
        Read the version served now into ``record`` and refuse (as ``on_refusal`` says) a switch
        to an older model, or a comparison with metrics of a model that is no longer served.

        ``record`` holds what the result archive said: ``retrained_version`` (the version the
        retraining made) and ``previous_version`` (the one its "previous" metrics are of, served
        when the retraining began), each where known.
        """
        served = self._served_version(record["model_id"], what)
        record["served_version"] = served
        retrained, previous = record.get("retrained_version"), record.get("previous_version")
        if served is None:
            self.log.warning("%s: no served version is listed; it cannot be checked for being older", what)
            return
        if retrained == served:  # switched already (a retry after the switch): nothing is replaced
            return
        self.log.info("%s: version %s served now; retrained version %s", what, served, retrained or "not known")
        if self.allow_older and retrained is not None and retrained < served:
            self.log.warning(
                "%s: switching to version %s, older than version %s (allow_older=True)", what, retrained, served
            )
        if not self.allow_older:
            if retrained is not None and retrained < served:
                self.not_switched(
                    context,
                    record,
                    OlderModelError(
                        f"{what} made version {retrained}, older than version {served} served now (a later "
                        "retrain was switched in first); nothing was switched. Pass allow_older=True to "
                        "switch to the older model anyway",
                        retrained_version=retrained,
                        served_version=served,
                    ),
                )
            if retrained is None and previous is not None and previous != served:
                self.not_switched(
                    context,
                    record,
                    OlderModelError(
                        f"{what} began while version {previous} was served; version {served} has been switched in "
                        "since, and neither the job's status nor its result archive says which version it made, "
                        "so it may be older; nothing was switched. Pass allow_older=True to switch anyway",
                        served_version=served,
                    ),
                )
            if retrained is None and previous is None:
                self.log.warning(
                    "%s: its result archive names no version, so whether it is older than the served version %s "
                    "cannot be checked",
                    what,
                    served,
                )
        if self.compares_metrics and previous is not None and previous != served:
            self.not_switched(
                context,
                record,
                StaleBaselineError(
                    f"{what} (version {retrained or 'not known'}) cannot be judged against the served model: its "
                    f"result archive's previous metrics are of version {previous}, served when the retraining "
                    f"began, and version {served} is served now; nothing was switched. Retrain again to compare "
                    "with the served model, or switch without comparing"
                ),
            )

    def _served_version(self, model_id: int, what: str) -> int | None:
        try:
            return self.hook.get_served_version(model_id)
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"{what}: the version served now could not be read ({exc}); it takes a train API key (Get "
                "classifiers). Pass allow_older=True, without a quality gate, to switch without this check",
                endpoint=exc.endpoint,
                http_status=exc.http_status,
                code=exc.code,
                error=exc.error,
                vendor_message=exc.vendor_message,
            ) from exc

    def switch(self, context: Context, record: dict[str, Any]) -> dict[str, Any]:
        """Switch the model to the retrain job in ``record``, emit the asset event, return the result."""
        model_id, retrain_job_id = record["model_id"], record["retrain_job_id"]
        self.hook.switch_model(retrain_job_id, model_id)
        self.log.info("Model %s now serves retrain job %s", model_id, retrain_job_id)
        record["switched"] = True
        extra = {"event": "switched", **record}
        assets.emit(context, self.asset_alias, assets.serving_uri(self.hook.connection_info.service, model_id), extra)
        return self.finished(task_result(record))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The retrained model → what its prediction APIs serve, with the gate's verdict (and the approval)."""
        if self.run_result is None or self.run_service is None:
            return lineage.no_lineage()
        result = self.run_result
        return lineage.switch_lineage(
            self.run_service,
            model_id=result["model_id"],
            retrain_job_id=result.get("retrain_job_id"),
            switched=result.get("switched"),
            metrics=result.get("metrics"),
            previous_metrics=result.get("previous_metrics"),
            quality_gate=result.get("quality_gate"),
            approval=result.get("approval"),
        )

    def not_switched(self, context: Context, record: dict[str, Any], refusal: Exception) -> NoReturn:
        """
        Record why nothing was switched in XCom (a failed or skipped task returns nothing), then
        fail with ``refusal`` or skip, as ``on_refusal`` says.
        """
        outcome = task_result({**record, "switched": False})
        ti = context["ti"]
        for key, value in outcome.items():
            ti.xcom_push(key=key, value=value)
        ti.xcom_push(key="return_value", value=outcome)
        if self.on_refusal == "skip":
            from airflow.providers.common.compat.sdk import AirflowSkipException

            self.log.warning("%s (on_refusal='skip': the task is skipped)", refusal)
            raise AirflowSkipException(str(refusal))
        raise refusal


def archive_versions(summary: Mapping[str, Any] | None, model_id: int) -> dict[str, int]:
    """
    What a retrain result archive's summary says of versions: ``retrained_version`` (the one the
    retraining made) and ``previous_version`` (the one its "previous" metrics are of), where it
    says them. The vendor's archive layout is undocumented; the emulator's summary names both.
    """
    if not isinstance(summary, Mapping) or summary.get("model_id", model_id) != model_id:
        return {}
    previous = summary.get("previous")
    found = {
        "retrained_version": summary.get("version"),
        "previous_version": previous.get("version") if isinstance(previous, Mapping) else None,
    }
    return {k: v for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 1}


# --- prediction APIs -------------------------------------------------------------------------------


class PredictionOneCreatePredictionApiOperator(PredictionOneJobOperator):
    """
    Deploy a model as a prediction API (classifier) and wait until it is ``running``.

    The API's inference key is never returned or stored: scoring looks it up by id.

    :param model_id: the model to deploy.
    :param ip_rules: access rules ``[{"source": CIDR, "order": "allow"|"deny", "priority": int}]``;
        the default allows every address.
    :return: ``{"classifier_id", "model_id", "url", "status", "version"}``.
    """

    template_fields: Sequence[str] = ("model_id", "ip_rules")
    ui_color = "#fce8e6"
    task_state = "prediction_api"
    event_ids = ("classifier_id",)

    def __init__(
        self,
        *,
        model_id: TemplatedId,
        ip_rules: Sequence[Mapping[str, Any]] = api.ALLOW_ALL_RULES,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 15.0,
        timeout: float | timedelta = 3600.0,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )
        self.model_id = model_id
        self.ip_rules = ip_rules

    def prepare(self, scratch: Path) -> tuple[int, list[dict[str, Any]]]:
        return model_id_value(self.model_id), api.validate_ip_rules(self.ip_rules)

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"prediction API {job.get('classifier_id')}"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        if not job.get("classifier_id"):
            return False
        try:
            self.hook.get_prediction_api(job["classifier_id"])
        except NotFoundError:
            return False
        return True

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        model_id, rules = prepared
        job = {"classifier_id": self.hook.create_prediction_api(model_id, rules).classifier_id}
        record.set(job)  # the creation starts the build: its id is known only from the answer
        self.log.info("Prediction API %s for model %s is being built", job["classifier_id"], model_id)
        return job

    def started(self, job: dict[str, Any]) -> dict[str, Any]:
        return self._describe(job["classifier_id"])

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.predone import PredictionOnePredictionApiTrigger

        return PredictionOnePredictionApiTrigger(classifier_id=job["classifier_id"], **self.trigger_kwargs())

    def _describe(self, classifier_id: str) -> dict[str, Any]:
        prediction_api = self.hook.get_prediction_api(classifier_id)
        return task_result(
            {
                "classifier_id": prediction_api.classifier_id,
                "model_id": prediction_api.model_id,
                "url": prediction_api.url,
                "status": prediction_api.status,
                "version": prediction_api.version,
            }
        )

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        return self._describe(event["classifier_id"]), []

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The model → the prediction API made."""
        if self.run_result is None or self.run_service is None:
            return lineage.no_lineage()
        return lineage.prediction_api_lineage(
            self.run_service,
            classifier_id=self.run_result["classifier_id"],
            model_id=self.run_result.get("model_id"),
            version=self.run_result.get("version"),
        )


class PredictionOneBatchPredictOperator(PredictionOneBaseOperator):
    """
    Score a CSV of any size through a prediction API, one row per request as the vendor expects.

    Rows stream in and results stream out in input order, with at most ``concurrency``
    requests in flight (memory does not grow with the file); transient failures are retried.
    The output has a ``row_number`` column (1-based input order) followed by the vendor's
    ``prediction_valid.csv`` columns; with ``with_reasons`` the reasons
    (``prediction_analysis.csv``) go to ``reasons_data``.

    :param classifier_id: the prediction API (must be ``running``).
    :param input_data: the CSV to score (local path or object storage).
    :param output_data: where to write predictions (local path or object storage).
    :param concurrency: requests in flight.
    :param with_reasons: also fetch the reasons behind each prediction.
    :param reasons_data: where to write reasons (default: ``<output stem>_reasons.csv``).
    :param id_column: a column of the input to prepend to each prediction (vendor ``pc``).
    :param echo_input: append the input columns to each prediction (vendor ``ad``).
    :param encoding: the text encoding of ``input_data`` (``utf-8``, ``cp932``, any Python codec
        name); rows are sent to the service in UTF-8 and the outputs are written in UTF-8.
    :param inference_timeout: seconds one row's request may take before it is sent again (a
        transient failure, retried as the connection's ``max_retries`` allow); the connection's
        ``timeout`` still bounds it.
    :param hedge: send a row's request once more when its answer is later than recent answers
        (at most 5 % of the requests); the first answer is kept.
    :return: ``{"rows_in", "rows_scored", "output_data", "reasons_data", "model_version"}``.
    """

    template_fields: Sequence[str] = ("classifier_id", "input_data", "output_data", "reasons_data")
    ui_color = "#f3e8fd"
    operator_extra_links = (ModelPageLink(),)

    def __init__(
        self,
        *,
        classifier_id: TemplatedId,
        input_data: Any,
        output_data: Any,
        concurrency: int = 8,
        with_reasons: bool = False,
        reasons_data: Any = None,
        id_column: str | None = None,
        echo_input: bool = False,
        encoding: str = "utf-8",
        inference_timeout: float = 10.0,
        hedge: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoding = encoding
        self.inference_timeout = inference_timeout
        self.hedge = hedge
        self.classifier_id = classifier_id
        self.input_data = input_data
        self.output_data = output_data
        self.concurrency = concurrency
        self.with_reasons = with_reasons
        self.reasons_data = reasons_data
        self.id_column = id_column
        self.echo_input = echo_input

    def execute(self, context: Context) -> Any:
        from airflow_provider_predone.scoring import BatchScorer
        from airflow_provider_predone.scoring_input import check_first_row

        classifier_id = path_id(self.classifier_id, "classifier_id")
        if (
            not isinstance(self.concurrency, int)
            or isinstance(self.concurrency, bool)
            or not 1 <= self.concurrency <= 256
        ):
            raise InvalidInputError(f"concurrency must be an integer from 1 to 256, got {self.concurrency!r}")
        if (
            not isinstance(self.inference_timeout, int | float)
            or isinstance(self.inference_timeout, bool)
            or not self.inference_timeout > 0
        ):
            raise InvalidInputError(
                f"inference_timeout must be a number of seconds > 0, got {self.inference_timeout!r}"
            )
        encoding = files.check_encoding(self.encoding)
        source = files.resolve("input_data", self.input_data)
        header = files.read_csv_header(source, encoding)
        if self.id_column is not None:
            files.check_columns(source, header, {"id_column": self.id_column})
        output = files.output_location("output_data", self.output_data)
        reasons = None
        if self.with_reasons:
            default = output.with_name(f"{Path(str(output.name)).stem}_reasons.csv")
            reasons = files.output_location("reasons_data", self.reasons_data or default)
        prediction_api = self.hook.get_prediction_api(classifier_id)
        if api.PREDICTION_API_STATUSES.classify(prediction_api.status) is not Phase.SUCCESS:
            from airflow_provider_predone.exceptions import PredictionApiNotRunningError

            raise PredictionApiNotRunningError(
                f"Prediction API {classifier_id} is {prediction_api.status!r}, not running: nothing was scored",
                endpoint="Inference",
            )
        options = api.InferenceOptions(ar=self.with_reasons, ad=self.echo_input, nr=True, pc=self.id_column)
        # The model's columns are known only from an answer: its first row goes alone, so an
        # input the model's schema refuses ends here, naming the missing columns.
        check_first_row(self.hook, prediction_api, source, options, encoding)
        scorer = BatchScorer(
            self.hook,
            prediction_api,
            options,
            concurrency=self.concurrency,
            log=self.log,
            encoding=encoding,
            inference_timeout=float(self.inference_timeout),
            hedge=self.hedge,
        )
        counts = scorer.run(source, output, reasons)
        return self.finished(
            task_result(
                {
                    "rows_in": counts.rows_in,
                    "rows_scored": counts.rows_scored,
                    "output_data": str(output),
                    "reasons_data": str(reasons) if reasons else None,
                    "model_version": counts.model_version,
                }
            )
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The prediction API and the input CSV → the scored CSV (and the reasons)."""
        if self.run_result is None or self.run_service is None:
            return lineage.no_lineage()
        result = self.run_result
        return lineage.batch_predict_lineage(
            self.run_service,
            classifier_id=str(self.classifier_id),
            input_data=self.input_data,
            encoding=self.encoding,
            output_data=result["output_data"],
            reasons_data=result.get("reasons_data"),
            rows_in=result.get("rows_in"),
            rows_scored=result.get("rows_scored"),
            model_version=result.get("model_version"),
        )


# --- listing and clean-up ----------------------------------------------------------------------------


class _ListOperator(PredictionOneBaseOperator):
    """Lists return a list: one XCom, not one per key."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", False)
        super().__init__(**kwargs)


class PredictionOneListModelsOperator(_ListOperator):
    """List models: ``[{model_id, name, target_type, version, ...}]``."""

    def execute(self, context: Context) -> Any:
        return list(self.hook.list_models())


class PredictionOneListDataSetsOperator(_ListOperator):
    """List data sets (without their presigned ``download_url``)."""

    def execute(self, context: Context) -> Any:
        return [{k: v for k, v in item.items() if k != "download_url"} for item in self.hook.list_data_sets()]


class PredictionOneListPredictionApisOperator(_ListOperator):
    """List prediction APIs (without their inference keys)."""

    def execute(self, context: Context) -> Any:
        return [item.public() for item in self.hook.list_prediction_apis()]


class _DeleteOperator(PredictionOneBaseOperator):
    """Delete one resource; already gone counts as done unless ``missing_ok`` is false."""

    resource = ""
    id_field = ""

    def __init__(self, *, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok

    def delete(self, resource_id: Any) -> None:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        resource_id = getattr(self, self.id_field)
        try:
            self.delete(resource_id)
        except NotFoundError:
            if not self.missing_ok:
                raise
            self.log.info("%s %s was already gone", self.resource, resource_id)
            return {self.id_field: resource_id, "deleted": False}
        self.log.info("Deleted %s %s", self.resource, resource_id)
        return {self.id_field: resource_id, "deleted": True}


class PredictionOneDeleteModelOperator(_DeleteOperator):
    """
    Delete a model.

    :param model_id: the model.
    """

    template_fields: Sequence[str] = ("model_id",)
    resource, id_field = "model", "model_id"

    def __init__(self, *, model_id: TemplatedId, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id

    def delete(self, resource_id: Any) -> None:
        self.hook.delete_model(model_id_value(resource_id))


class PredictionOneDeleteDataSetOperator(_DeleteOperator):
    """
    Delete a data set.

    :param data_set_id: the data set.
    """

    template_fields: Sequence[str] = ("data_set_id",)
    resource, id_field = "data set", "data_set_id"

    def __init__(self, *, data_set_id: TemplatedId, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_set_id = data_set_id

    def delete(self, resource_id: Any) -> None:
        self.hook.delete_data_set(api.positive_id(resource_id, "data_set_id"))


class PredictionOneDeletePredictionApiOperator(_DeleteOperator):
    """
    Delete a prediction API.

    :param classifier_id: the prediction API.
    """

    template_fields: Sequence[str] = ("classifier_id",)
    resource, id_field = "prediction API", "classifier_id"

    def __init__(self, *, classifier_id: TemplatedId, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classifier_id = classifier_id

    def delete(self, resource_id: Any) -> None:
        self.hook.delete_prediction_api(path_id(resource_id, "classifier_id"))
