"""Operator that trains AiTEMS recommendation models."""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple

from airflow_provider_predone import assets
from airflow_provider_predone.exceptions import InvalidInputError, RowsInDoubtError, reason
from airflow_provider_predone.operators.base import Finished, JobOperator, ProviderOperator, TemplatedId, task_result
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import path_id, snippet
from airflow_provider_predone.protocol.fields import sendable_name
from airflow_provider_predone.waiting import TIMEOUT

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, XComArg
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_predone._task_state import TaskState
    from airflow_provider_predone.hooks.aitems import AitemsHook
    from airflow_provider_predone.triggers.base import JobStatus, StatusTrigger


class AitemsTrainOperator(JobOperator):
    """
    Train AiTEMS recommendation models of a (batch) service and wait until all are completed.

    One training is requested per type; each type's new version is found in the list of
    recent trainings. A retried task re-attaches to the trainings its earlier try requested.

    :param service_id: the AiTEMS service.
    :param train_types: any of ``personalRecommend``, ``relatedItem``, ``pop``.
    :param hp_config: HPO settings (``{"is_enabled": bool, ...options}``); default disabled.
        The options and their ranges are NAVER's documented ones, checked before any request;
        numbers may be numeric strings.
    :param extra_hp_options: HPO options NAVER's reference does not list yet, sent unchecked.
    :param description: the training description.
    :param wait_for_completion: wait until every training ends.
    :param deferrable: wait in the triggerer.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "versions": {type: version}, "statuses": {type: status}}``.
    """

    template_fields: Sequence[str] = ("service_id", "train_types", "hp_config", "extra_hp_options", "description")
    template_fields_renderers = {"hp_config": "json", "extra_hp_options": "json"}
    ui_color = "#e0f7fa"
    task_state = "aitems_training"
    run_result: dict[str, Any] | None = None
    event_ids = ("service_id", "versions")
    asset_alias = assets.AITEMS_UPDATES

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        train_types: Sequence[str] | XComArg,
        hp_config: Mapping[str, Any] | None = None,
        extra_hp_options: Mapping[str, Any] | None = None,
        description: str | None = None,
        aitems_conn_id: str = "aitems_default",
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 60.0,
        timeout: float | timedelta = TIMEOUT,
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
        self.service_id = service_id
        self.train_types = train_types
        self.hp_config = hp_config
        self.extra_hp_options = extra_hp_options
        self.description = description
        self.aitems_conn_id = aitems_conn_id

    @property
    def conn_id(self) -> str:
        return self.aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    def prepare(self, scratch: Path) -> tuple[str, list[str], dict[str, Any]]:
        service_id = api.service_id_value(self.service_id, "service_id")
        hp_config = api.validate_hp_config(self.hp_config, self.extra_hp_options)
        return service_id, api.validate_train_types(self.train_types), hp_config

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"AiTEMS trainings {job.get('versions')} of service {job.get('service_id')}"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        return job.get("service_id") == prepared[0] and bool(job.get("versions"))

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        service_id, types, _ = prepared  # hp_config was checked there; sent as given, checked again
        hook = self.hook
        if earlier and earlier.get("service_id") == service_id:
            # An earlier try recorded what it saw before requesting; if new versions exist, it got through.
            before = earlier["before"]
            now = api.latest_versions(hook.list_trainings(service_id))
            if all(now.get(t) not in (None, before.get(t)) for t in types):
                job = {"service_id": service_id, "before": before, "versions": {t: now[t] for t in types}}
                record.set(job)
                return job
        before = api.latest_versions(hook.list_trainings(service_id))
        record.set({"service_id": service_id, "before": before, "versions": None})
        versions = hook.request_training(
            service_id,
            types,
            hp_config=self.hp_config,
            extra_hp_options=self.extra_hp_options,
            description=self.description,
        )
        job = {"service_id": service_id, "before": before, "versions": versions}
        record.set(job)
        self.log.info("Requested AiTEMS training of %s: versions %s", service_id, versions)
        return job

    def started(self, job: dict[str, Any]) -> dict[str, Any]:
        return task_result({"service_id": job["service_id"], "versions": job["versions"], "statuses": {}})

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

        return AitemsTrainingTrigger(service_id=job["service_id"], versions=job["versions"], **self.trigger_kwargs())

    def observe(self, trigger: StatusTrigger) -> JobStatus:
        from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

        assert isinstance(trigger, AitemsTrainingTrigger)
        trainings = {t: self.hook.get_training(trigger.service_id, t, v) for t, v in trigger.versions.items()}
        return trigger.observed({t: str(training["status"]) for t, training in trainings.items()})

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        service_id, versions = event["service_id"], event["versions"]
        events = [(assets.aitems_uri(service_id, t), {"event": "trained", "version": v}) for t, v in versions.items()]
        statuses = event.get("statuses", {})
        self.run_result = {"service_id": service_id, "versions": versions, "statuses": statuses}
        return task_result(self.run_result), events

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The service → the models trained (one per type)."""
        from airflow_provider_predone import lineage

        if self.run_result is None:
            return lineage.no_lineage()
        return lineage.aitems_training_lineage(
            service_id=self.run_result["service_id"],
            versions=self.run_result["versions"],
            statuses=self.run_result.get("statuses"),
        )


# --- data (schemas and datasets) ---

#: Bytes read from the start of a data file to find its header line (never the whole file).
HEADER_BYTES = 1024 * 1024
DatasetType = Literal["user", "item", "interaction"]


class PreparedDataset(NamedTuple):
    """What :meth:`AitemsDatasetOperator.prepare` checked: everything the dataset's start needs."""

    dataset_type: str
    name: str
    schema_name: str
    #: the schema's fields, when it does not exist yet (``None``: it exists and the files match it)
    new_schema: list[dict[str, Any]] | None
    bucket: str
    #: the key the dataset names: the uploaded file's, or the given file or prefix
    key: str
    #: the file to upload to ``key`` (``None``: the data is in the bucket already)
    source: Any
    description: str | None


def read_header(stream: IO[bytes], where: str) -> list[str]:
    """
    The column names of a CSV from its first line only (at most :data:`HEADER_BYTES` are read),
    exactly as written: AiTEMS compares names, order and case, so nothing is stripped.

    :param where: the file, named in every error.
    :raises InvalidInputError: the file is empty, not UTF-8 text, or has no readable header.
    """
    head = stream.read(HEADER_BYTES)
    try:
        # final=False: a character cut at the end of what was read is not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) < HEADER_BYTES)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{where} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    line = text.splitlines()[0] if text.strip() else ""
    if not line.strip():
        raise InvalidInputError(f"{where} has no header line (it is empty or starts with a blank line)")
    try:
        header = next(csv.reader([line]))
    except csv.Error as exc:
        raise InvalidInputError(f"{where}: the header line is not CSV ({exc})") from None
    if any(not name for name in header):
        raise InvalidInputError(f"{where} has an unnamed column in its header {header}")
    return header


class AitemsDatasetOperator(JobOperator):
    """
    Register one AiTEMS dataset (user, item or interaction data) and wait until it is ``enable``.

    Before anything is uploaded or registered, the header line of each data file (only that
    line is read) is checked against the schema: the type's required columns present, and every
    column of the schema in the same order and with the same case. The schema is ``schema_name``'s
    when it exists; otherwise it is made from ``fields``, or from the file's header (its columns
    in the file's order, the required ones with their types, every other one ``string``), and
    created. The bucket must exist. Then the file is uploaded to ``key`` (streamed) and the
    dataset registered, exactly once: its name is recorded before the request, so a retried task,
    or a lost answer, finds the dataset by name instead of registering a second one.

    :param dataset_type: ``user``, ``item`` or ``interaction``.
    :param name: the dataset's name; AiTEMS reads a dataset's files once, so give each run its own
        (``"clicks_{{ ds_nodash }}"``).
    :param schema_name: the schema (3-20 letters, digits, ``_`` or ``-``, starting with a letter),
        created when missing.
    :param bucket: the NCP Object Storage bucket the dataset is read from.
    :param key: where ``data`` is uploaded to (a key ending in ``/`` gets the file's name); without
        ``data``, the object already in the bucket, or a prefix whose every file is the dataset.
    :param data: the data file: a local path or any ``ObjectStoragePath`` (``s3://...``); ``None``
        when the files are in ``bucket`` already.
    :param fields: the schema's fields (``[{"name", "type", "categorical"?}]``), used only when
        ``schema_name`` does not exist yet; an existing schema with other fields is an error.
    :param description: the dataset's description.
    :param aitems_conn_id: the ``aitems`` connection (its keys also sign the Object Storage requests).
    :param wait_for_completion: wait until the dataset is ``enable``.
    :param deferrable: wait in the triggerer.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta.
    :return: ``{"dataset_id", "name", "type", "schema_name", "bucket", "key"}``.
    """

    template_fields: Sequence[str] = ("name", "schema_name", "bucket", "key", "data", "fields", "description")
    template_fields_renderers = {"fields": "json"}
    ui_color = "#e0f7fa"
    task_state = "aitems_dataset"
    event_ids = ("dataset_id",)
    asset_alias = assets.AITEMS_DATASETS

    def __init__(
        self,
        *,
        dataset_type: DatasetType,
        name: str | XComArg,
        schema_name: str | XComArg,
        bucket: str | XComArg,
        key: str | XComArg,
        data: Any = None,
        fields: Sequence[Mapping[str, Any]] | XComArg | None = None,
        description: str | XComArg | None = None,
        aitems_conn_id: str = "aitems_default",
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        timeout: float | timedelta = TIMEOUT,
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
        # Checked at parse: a wrong type is a typo in the DAG, not in the data.
        self.dataset_type = api.validate_dataset_type(dataset_type)
        self.name = name
        self.schema_name = schema_name
        self.bucket = bucket
        self.key = key
        self.data = data
        self.fields = fields
        self.description = description
        self.aitems_conn_id = aitems_conn_id
        #: what lineage needs after the run (the OpenLineage provider reads no XCom)
        self.run_result: dict[str, Any] | None = None
        self.run_source: Any = None

    @property
    def conn_id(self) -> str:
        return self.aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    # --- the parts of the job skeleton ---

    def prepare(self, scratch: Path) -> PreparedDataset:
        """Every check, in the order that sends least: arguments, the file's header, the bucket, the schema."""
        from airflow_provider_predone import files

        dataset_type = self.dataset_type
        name = api.validate_dataset_name(self.name, "name")
        schema_name = api.validate_schema_name(self.schema_name, "schema_name")
        bucket = api.validate_bucket(self.bucket, "bucket")
        key = api.validate_key(self.key, "key")
        fields = None if self.fields is None else api.validate_fields(dataset_type, self.fields, "fields")
        description = None if self.description is None else sendable_name(self.description, "description")
        headers: dict[str, list[str]] = {}
        source = None
        if self.data is not None:
            source = files.resolve("data", self.data, extensions=())
            if key.endswith("/"):
                key = api.validate_key(f"{key}{source.name}", "key")
            where = f"data: {source}"
            with source.open() as stream:
                headers[where] = read_header(stream, where)
            # Before any remote call: the type's required columns, and the given fields.
            api.check_header(dataset_type, headers[where], [], where, exact=False)
            if fields is not None:
                self._check(fields, headers)
        storage = self.hook.object_storage
        storage.check_bucket(bucket)  # a missing bucket is named before anything is sent
        if source is None:
            for object_key in self._object_keys(bucket, key):
                where = f"s3://{bucket}/{object_key}"
                with storage.open_read(bucket, object_key) as stream:
                    headers[where] = read_header(stream, where)
        existing = self.hook.find_schema(schema_name)
        new_schema = None
        if existing is not None:
            if existing.get("datasetType") not in (None, dataset_type):
                raise InvalidInputError(
                    f"schema_name {schema_name!r} is a {existing.get('datasetType')} schema, not a {dataset_type} one"
                )
            current = [f for f in existing.get("fields") or [] if isinstance(f, Mapping)]
            has = [(str(f.get("name")), str(f.get("type"))) for f in current]
            if fields is not None and has != [(f["name"], f["type"]) for f in fields]:
                raise InvalidInputError(
                    f"fields: schema {schema_name!r} exists with the columns {has} (name, type), not "
                    f"{[(f['name'], f['type']) for f in fields]}: drop fields= to use it, or give a new schema_name"
                )
            self._check(current, headers)
        else:
            first = next(iter(headers.items()))
            new_schema = fields or api.fields_from_header(dataset_type, first[1], first[0])
            self._check(new_schema, headers)
        return PreparedDataset(dataset_type, name, schema_name, new_schema, bucket, key, source, description)

    def _check(self, fields: Sequence[Mapping[str, Any]], headers: Mapping[str, list[str]]) -> None:
        columns = [str(f.get("name")) for f in fields]
        for where, header in headers.items():
            api.check_header(self.dataset_type, header, columns, where)

    def _object_keys(self, bucket: str, key: str) -> list[str]:
        """The files the dataset will be read from: the object ``key``, or every file under it as a prefix."""
        storage = self.hook.object_storage
        if not key.endswith("/") and storage.exists(bucket, key):
            return [key]
        keys = [k for k in storage.list_keys(bucket, key) if not k.endswith("/")]
        if not keys:
            raise InvalidInputError(f"key: s3://{bucket}/{key} is neither an object nor a prefix of any")
        return keys

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"AiTEMS dataset {job.get('name')!r} ({job.get('dataset_id') or 'not registered yet'})"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        return job.get("name") == prepared.name and job.get("dataset_id") is not None

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        p: PreparedDataset = prepared
        hook = self.hook
        job = {"name": p.name, "type": p.dataset_type, "schema_name": p.schema_name, "bucket": p.bucket, "key": p.key}
        found = hook.find_dataset(p.name)
        if found is not None:
            if earlier and earlier.get("name") == p.name:  # an earlier try registered it; its answer was lost
                job["dataset_id"] = str(found["datasetId"])
                record.set(job)
                return job
            raise InvalidInputError(
                f"name: the dataset {p.name!r} exists already (datasetId {found['datasetId']}, status "
                f"{found.get('status')!r}); AiTEMS reads a dataset's files once, when it is registered: give each "
                "run's dataset its own name (e.g. 'clicks_{{ ds_nodash }}') or delete that one"
            )
        if p.new_schema is not None and hook.find_schema(p.schema_name) is None:
            hook.create_schema(p.dataset_type, p.schema_name, p.new_schema)
            self.log.info("Created the %s schema %r: %s", p.dataset_type, p.schema_name, p.new_schema)
        if p.source is not None:
            sent = hook.object_storage.upload(p.source.location, p.bucket, p.key)
            self.log.info("Uploaded %s to s3://%s/%s (%d bytes)", p.source, p.bucket, p.key, sent)
        record.set({**job, "dataset_id": None})  # before the request: a retry looks the name up
        dataset = hook.create_dataset(p.dataset_type, p.name, p.schema_name, p.bucket, p.key, p.description)
        job["dataset_id"] = str(dataset["datasetId"])
        record.set(job)
        self.log.info("Registered %s", self.describe_job(job))
        return job

    def started(self, job: dict[str, Any]) -> dict[str, Any]:
        return task_result({**self._result(job), "status": "started"})

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.aitems import AitemsDatasetTrigger

        return AitemsDatasetTrigger(dataset_id=job["dataset_id"], **self.trigger_kwargs())

    def observe(self, trigger: StatusTrigger) -> JobStatus:
        from airflow_provider_predone.triggers.aitems import AitemsDatasetTrigger

        assert isinstance(trigger, AitemsDatasetTrigger)
        return trigger.observed(self.hook.get_dataset(trigger.dataset_id))

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        # The dataset says where it was read from: a resumed task has only the event's ids.
        dataset = self.hook.get_dataset(event["dataset_id"])
        os_info: Mapping[str, Any] = dataset["osInfo"] if isinstance(dataset.get("osInfo"), Mapping) else {}
        result = self._result(
            {
                "dataset_id": event["dataset_id"],
                "name": dataset.get("name", event.get("name")),
                "type": dataset.get("type", event.get("type")),
                "schema_name": dataset.get("schemaName"),
                "bucket": os_info.get("bucket"),
                "key": os_info.get("key"),
            }
        )
        self.log.info("AiTEMS dataset %s is %r", result, event.get("job_status"))
        extra = {"event": "registered", **{k: v for k, v in result.items() if k != "dataset_id"}}
        return result, [(assets.aitems_dataset_uri(result["dataset_id"]), extra)]

    @staticmethod
    def _result(job: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("dataset_id", "name", "type", "schema_name", "bucket", "key")
        return task_result({k: snippet(str(job[k]), 1100) if job.get(k) is not None else None for k in keys})

    def finished(self, result: dict[str, Any]) -> dict[str, Any]:
        self.run_result = result
        if self.data is not None:
            self.run_source = self.data
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The file (or files) in Object Storage → the AiTEMS dataset, and the local file uploaded, if any."""
        from airflow_provider_predone import lineage

        result = self.run_result
        if not result or not {"dataset_id", "bucket", "key"} <= set(result):
            return lineage.no_lineage()
        return lineage.aitems_dataset_lineage(
            bucket=result["bucket"],
            key=result["key"],
            dataset_id=result["dataset_id"],
            source=self.run_source,
            name=result.get("name"),
            dataset_type=result.get("type"),
            schema_name=result.get("schema_name"),
        )


# --- services ---


def dataset_id_value(value: Any, field: str, dataset_type: str) -> str:
    """
    A dataset id from a literal, a rendered template or the dataset task's result
    (``{"dataset_id": ..., "type": ...}``), whose type, when it says one, must be ``dataset_type``.

    :raises InvalidInputError: naming ``field``.
    """
    from airflow_provider_predone.exceptions import InvalidInputError

    if isinstance(value, Mapping):
        given = value.get("dataset_type", value.get("type"))
        dataset_id = value.get("dataset_id", value.get("datasetId"))
        if given is not None and given != dataset_type:
            raise InvalidInputError(
                f"{field} takes the {dataset_type} dataset, but was given a {given!r} dataset ({dataset_id!r})"
            )
        value = dataset_id
    return path_id(value, field)


class AitemsServiceOperator(JobOperator):
    """
    Create an AiTEMS service by name, or reuse the one of that name, link its user, item and
    interaction datasets, and wait until it can learn.

    Exactly once: the name is looked up before a service is created (names are unique), so a
    retried task, a lost answer or a second run reuses the service. A reused service that is
    training or scheduled cannot be linked anew; when its links are already these datasets
    nothing is sent, else the task fails saying so.

    :param name: the service name: 3-20 letters, digits, ``_`` or ``-``, starting with a letter or ``_``.
    :param user_dataset_id: the user dataset: its id, or the dataset task's result.
    :param item_dataset_id: the item dataset.
    :param interaction_dataset_id: the interaction dataset.
    :param service_type: ``batch`` (train on request) or ``interval`` (train on a cycle).
    :param description: the service's description (when it is created).
    :param wait_for_completion: wait until the service can learn.
    :param deferrable: wait in the triggerer.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "name", "type", "status", "created"}``.
    """

    template_fields: Sequence[str] = (
        "name",
        "user_dataset_id",
        "item_dataset_id",
        "interaction_dataset_id",
        "description",
    )
    ui_color = "#e0f7fa"
    task_state = "aitems_service"
    event_ids = ("service_id",)
    asset_alias = assets.AITEMS_SERVICES

    def __init__(
        self,
        *,
        name: str,
        user_dataset_id: TemplatedId | Mapping[str, Any],
        item_dataset_id: TemplatedId | Mapping[str, Any],
        interaction_dataset_id: TemplatedId | Mapping[str, Any],
        service_type: Literal["batch", "interval"] = "batch",
        description: str | None = None,
        aitems_conn_id: str = "aitems_default",
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
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
        self.name = name
        self.user_dataset_id = user_dataset_id
        self.item_dataset_id = item_dataset_id
        self.interaction_dataset_id = interaction_dataset_id
        self.service_type = service_type
        self.description = description
        self.aitems_conn_id = aitems_conn_id

    @property
    def conn_id(self) -> str:
        return self.aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    #: What the run returned and linked, for ``get_openlineage_facets_on_complete`` (another process).
    run_result: dict[str, Any] | None = None
    run_datasets: dict[str, str] | None = None

    def prepare(self, scratch: Path) -> dict[str, Any]:
        from airflow_provider_predone.exceptions import InvalidInputError

        if self.service_type not in api.SERVICE_TYPES:
            raise InvalidInputError(f"service_type must be one of {list(api.SERVICE_TYPES)}, got {self.service_type!r}")
        if self.description is not None and not isinstance(self.description, str):
            raise InvalidInputError(f"description must be text, got {type(self.description).__name__}")
        given = {
            "user": self.user_dataset_id,
            "item": self.item_dataset_id,
            "interaction": self.interaction_dataset_id,
        }
        dataset_ids = {kind: dataset_id_value(value, f"{kind}_dataset_id", kind) for kind, value in given.items()}
        api.linked_dataset_ids(dataset_ids)  # the same dataset twice is refused here, not by the service
        self.run_datasets = dataset_ids
        return {
            "name": api.validate_service_name(self.name),
            "type": self.service_type,
            "description": self.description or None,
            "dataset_ids": dataset_ids,
        }

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"AiTEMS service {job.get('name')!r} ({job.get('service_id')})"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        return (
            bool(job.get("service_id"))
            and bool(job.get("linked"))
            and (job.get("name"), job.get("dataset_ids")) == (prepared["name"], prepared["dataset_ids"])
        )

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        hook, name, dataset_ids = self.hook, prepared["name"], prepared["dataset_ids"]
        job: dict[str, Any] = {"name": name, "service_id": None, "dataset_ids": dataset_ids, "linked": False}
        record.set(job)  # the name is the key: a retry finds the service by it
        service, created = hook.get_or_create_service(name, prepared["type"], prepared["description"])
        service_id = api.service_id_value(service.get("serviceId"), "serviceId")
        job.update(service_id=service_id, created=created or bool(earlier and earlier.get("created")))
        record.set(job)
        self.log.info("%s AiTEMS service %r: %s", "Created" if created else "Reusing", name, service_id)
        status = str(service.get("status")) if created else str(hook.get_service(service_id)["status"])
        if status in api.SERVICE_BUSY_STATUSES and not self._linked_already(service_id, dataset_ids):
            from airflow.providers.common.compat.sdk import AirflowException

            raise AirflowException(
                f"AiTEMS service {name!r} ({service_id}) is {status}: NAVER does not link datasets while a "
                "service trains or is scheduled. Stop its schedule (interval) or let its training end, then retry"
            )
        if status not in api.SERVICE_BUSY_STATUSES:
            hook.link_datasets(service_id, dataset_ids)
            self.log.info("Linked AiTEMS service %s to datasets %s", service_id, dataset_ids)
        job["linked"] = True
        record.set(job)
        return job

    def _linked_already(self, service_id: str, dataset_ids: Mapping[str, str]) -> bool:
        """Whether each dataset lists the service among its ``connectedServices``."""
        for dataset_id in dataset_ids.values():
            connected = self.hook.get_dataset(dataset_id).get("connectedServices")
            if not isinstance(connected, list) or not any(
                service_id in (c, c.get("serviceId") if isinstance(c, dict) else None) for c in connected
            ):
                return False
        return True

    def started(self, job: dict[str, Any]) -> dict[str, Any]:
        return task_result(
            {"service_id": job["service_id"], "name": job["name"], "type": self.service_type, "status": "linked"}
        )

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        from airflow_provider_predone.triggers.aitems import AitemsServiceTrigger

        return AitemsServiceTrigger(service_id=job["service_id"], **self.trigger_kwargs())

    def observe(self, trigger: StatusTrigger) -> JobStatus:
        from airflow_provider_predone.triggers.aitems import AitemsServiceTrigger

        assert isinstance(trigger, AitemsServiceTrigger)
        return trigger.observed(self.hook.get_service(trigger.service_id))

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        service_id = event["service_id"]
        job = self.record(context).get() or {}
        result = {
            "service_id": service_id,
            "name": event.get("name", self.name),
            "type": event.get("type", self.service_type),
            "status": event.get("job_status"),
            "created": job.get("created"),
        }
        datasets = job.get("dataset_ids") or self.run_datasets or {}
        self.run_datasets = dict(datasets)  # a resumed task did not run prepare in this process
        extra = {"event": "linked", "name": result["name"], "type": result["type"], "datasets": datasets}
        return task_result(result), [(assets.aitems_service_uri(service_id), extra)]

    def finished(self, result: dict[str, Any]) -> dict[str, Any]:
        self.run_result = result
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The user, item and interaction datasets → the service."""
        from airflow_provider_predone import lineage

        if self.run_result is None or not self.run_datasets:
            return lineage.no_lineage()
        return lineage.aitems_service_lineage(
            service_id=self.run_result["service_id"],
            dataset_ids=self.run_datasets,
            name=self.run_result.get("name"),
            service_type=self.run_result.get("type"),
        )


class _AitemsDeleteOperator(ProviderOperator):
    """Delete one AiTEMS resource; already gone counts as done unless ``missing_ok`` is false."""

    resource = ""
    id_field = ""

    def __init__(self, *, missing_ok: bool = True, aitems_conn_id: str = "aitems_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok
        self.aitems_conn_id = aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    def checked_id(self) -> str:
        """The resource's id, checked before any request."""
        raise NotImplementedError

    def delete(self, resource_id: str) -> bool:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        resource_id = self.checked_id()
        deleted = self.delete(resource_id)
        self.log.info("%s %s %s", self.resource, resource_id, "deleted" if deleted else "was already gone")
        return {self.id_field: resource_id, "deleted": deleted}


class AitemsDeleteServiceOperator(_AitemsDeleteOperator):
    """
    Delete an AiTEMS service.

    :param service_id: the service id (or the result of :class:`AitemsServiceOperator`).
    :param missing_ok: a service already gone is not an error (the result says ``deleted: false``).
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "deleted"}``.
    """

    template_fields: Sequence[str] = ("service_id",)
    resource, id_field = "AiTEMS service", "service_id"

    def __init__(self, *, service_id: TemplatedId | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id

    def checked_id(self) -> str:
        return api.service_id_value(self.service_id, "service_id")

    def delete(self, resource_id: str) -> bool:
        return self.hook.delete_service(resource_id, missing_ok=self.missing_ok)


class AitemsDeleteDatasetOperator(_AitemsDeleteOperator):
    """
    Delete an AiTEMS dataset (not its files in Object Storage).

    :param dataset_id: the dataset id (or the dataset task's result).
    :param missing_ok: a dataset already gone is not an error (the result says ``deleted: false``).
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"dataset_id", "deleted"}``.
    """

    template_fields: Sequence[str] = ("dataset_id",)
    resource, id_field = "AiTEMS dataset", "dataset_id"

    def __init__(self, *, dataset_id: TemplatedId | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id

    def checked_id(self) -> str:
        value = self.dataset_id
        return path_id(value.get("dataset_id") if isinstance(value, Mapping) else value, "dataset_id")

    def delete(self, resource_id: str) -> bool:
        return self.hook.delete_dataset(resource_id, missing_ok=self.missing_ok)


class AitemsDeleteSchemaOperator(_AitemsDeleteOperator):
    """
    Delete an AiTEMS schema (datasets registered with it may need deleting first).

    :param schema_name: the schema's name.
    :param missing_ok: a schema already gone is not an error (the result says ``deleted: false``).
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"schema_name", "deleted"}``.
    """

    template_fields: Sequence[str] = ("schema_name",)
    resource, id_field = "AiTEMS schema", "schema_name"

    def __init__(self, *, schema_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema_name = schema_name

    def checked_id(self) -> str:
        return api.validate_schema_name(self.schema_name)

    def delete(self, resource_id: str) -> bool:
        return self.hook.delete_schema(resource_id, missing_ok=self.missing_ok)


# --- interval ---

#: How a push whose answer was lost is resolved (see :class:`AitemsPushRowsOperator`).
IN_DOUBT_POLICIES = ("fail", "resend", "skip")
#: Row files, by extension.
ROW_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Longest line of a JSON Lines file (one row): longer is not a row, and is refused before it is held.
MAX_ROW_BYTES = 1024 * 1024
#: Seconds between progress lines while rows are pushed.
PROGRESS_SECONDS = 10.0


class AitemsScheduleOperator(ProviderOperator):
    """
    Start an interval service's cycle training, setting its update cycle first, or stop it.

    Exactly once: a start (or stop) whose answer was lost is found by the service's status, and
    a retried task finds the cycle already started (stopped) and does not send it again.

    :param service_id: the interval service (its id; a name is refused before any request).
    :param action: ``start`` or ``stop``.
    :param term: the update cycle, ``hour1``, ``hour3``, ``hour6`` or ``hour12``; set before a
        start. ``None`` keeps the cycle the service has (a start fails early if it has none).
    :param train_types: what a start trains: any of ``personalRecommend``, ``relatedItem``, ``pop``.
    :param hp_config: HPO settings of a start (``{"is_enabled": bool, ...options}``), checked
        against NAVER's ranges; default disabled.
    :param extra_hp_options: HPO options NAVER's reference does not list yet, sent unchecked.
    :param description: the description of a start.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "action", "status", "term", "versions": {type: version}}``; a start's
        ``versions`` are the cycle's trainings (what :class:`~..sensors.aitems.AitemsUpdateSensor` waits on).
    """

    template_fields: Sequence[str] = ("service_id", "action", "term", "train_types", "hp_config", "description")
    template_fields_renderers = {"hp_config": "json"}
    ui_color = "#e0f7fa"

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        action: Literal["start", "stop"] | str = "start",
        term: Literal["hour1", "hour3", "hour6", "hour12"] | str | None = None,
        train_types: Sequence[str] | XComArg | None = None,
        hp_config: Mapping[str, Any] | None = None,
        extra_hp_options: Mapping[str, Any] | None = None,
        description: str | None = None,
        aitems_conn_id: str = "aitems_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id
        self.action = action
        self.term = term
        self.train_types = train_types
        self.hp_config = hp_config
        self.extra_hp_options = extra_hp_options
        self.description = description
        self.aitems_conn_id = aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        service_id = api.service_id_value(self.service_id)
        if self.action not in api.SCHEDULE_ACTIONS:
            raise InvalidInputError(f"action must be one of {list(api.SCHEDULE_ACTIONS)}, got {self.action!r}")
        term = None if self.term in (None, "") else api.validate_term(self.term)
        if self.action == "stop":
            return self._stop(service_id)
        # The whole start request is built (every input checked) before anything is sent.
        types = api.validate_train_types(self.train_types)
        api.schedule(service_id, "start", types, self.hp_config, self.description, self.extra_hp_options)
        hook = self.hook
        service = hook.get_service(service_id)
        if service.get("type") not in (None, "interval"):
            raise InvalidInputError(
                f"service_id {service_id} is a {service.get('type')} service: cycle training is for interval "
                "services (a batch service trains with AitemsTrainOperator)"
            )
        if term is None and not service.get("learningInterval"):
            raise InvalidInputError(
                f"term: service {service_id} has no update cycle yet; pass one of {list(api.INTERVAL_TERMS)}"
            )
        before = api.latest_versions(hook.list_trainings(service_id))
        if service.get("status") in api.SCHEDULED_SERVICE_STATUSES:
            self.log.info("The cycle training of %s is started already (an earlier try, or someone else)", service_id)
        else:
            if term is not None:
                hook.set_interval(service_id, term)
            hook.start_schedule(
                service_id,
                types,
                hp_config=self.hp_config,
                description=self.description,
                extra_hp_options=self.extra_hp_options,
            )
            self.log.info("Started the cycle training of %s (%s, cycle %s)", service_id, types, term)
        versions = hook.new_versions(service_id, types, before) if before.keys() < set(types) else {}
        latest = api.latest_versions(hook.list_trainings(service_id))
        versions = {t: versions.get(t) or latest[t] for t in types if t in versions or t in latest}
        status = hook.get_service(service_id).get("status")
        return task_result(
            {"service_id": service_id, "action": "start", "status": status, "term": term, "versions": versions}
        )

    def _stop(self, service_id: str) -> dict[str, Any]:
        hook = self.hook
        status = hook.get_service(service_id).get("status")
        if status in api.SCHEDULED_SERVICE_STATUSES:
            hook.stop_schedule(service_id)
            self.log.info("Stopped the cycle training of %s", service_id)
        else:
            self.log.info("The cycle training of %s is not started (%s): nothing to stop", service_id, status)
        status = hook.get_service(service_id).get("status")
        return task_result({"service_id": service_id, "action": "stop", "status": status})


class _Batch(NamedTuple):
    """Rows of one push: its position (from 0), the file lines they came from, the rows."""

    position: int
    first_line: int
    last_line: int
    rows: list[dict[str, Any]]


class AitemsPushRowsOperator(ProviderOperator):
    """
    Push rows from a file into a dataset of an interval service, in batches, each exactly once.

    The file is CSV with a header or JSON Lines (one JSON object a line), local or any
    ``ObjectStoragePath``, read as a stream (memory holds one batch). Every row is checked
    before the first push (the dataset type's required columns; CSV values typed by the
    dataset's schema when the service names one), so bad input sends nothing.

    Exactly once per batch: before a batch is sent, the task's retry record says it is in
    flight; once it is acknowledged, that it is done. A retried (or cleared) task skips the
    acknowledged batches. A push refused by an answer (429, 500, 503) was not applied and is
    sent again. A push whose answer never came may or may not have been applied, and AiTEMS
    has no read-back of pushed rows, so the batch is *in doubt*. By default the task stops,
    naming the batch and its lines, and sends nothing more. Whoever knows whether it was added
    sets ``batch_in_doubt_landed`` and clears the task, which resumes there: that one batch is
    skipped (``True``) or sent again (``False``); a later batch in doubt stops the task again.
    ``on_batch_in_doubt`` decides for every batch in doubt instead: ``resend`` (it may then be
    added twice; harmless where a resend only repeats the same users or items) or ``skip`` (it
    may then be missing). The retry record is kept when the task fails, and deleted once it succeeds.

    :param service_id: the interval service.
    :param dataset_id: the dataset the rows go into (linked to the service): its id, or the
        dataset task's result (its type must be ``dataset_type``).
    :param dataset_type: ``user``, ``item`` or ``interaction``.
    :param data: the rows file: a local path or an object storage URL / ``ObjectStoragePath``
        ending in ``.csv``, ``.jsonl`` or ``.ndjson``.
    :param file_format: ``csv`` or ``jsonl``; ``None`` takes it from the file's extension.
    :param batch_size: rows per push (1 to 10,000).
    :param encoding: the file's text encoding.
    :param on_batch_in_doubt: ``fail``, ``resend`` or ``skip``: what to do with every batch in doubt.
    :param batch_in_doubt_landed: the answer, for the batch an earlier try left in doubt, to "was
        it added?": ``True`` skips it, ``False`` sends it again; ``None`` leaves it to ``on_batch_in_doubt``.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "dataset_id", "dataset_type", "rows", "batches", "resumed_at", "in_doubt"}``:
        rows and batches pushed (by this try and earlier ones), the batch this try began at, and the
        in-doubt batches resolved (by number, from 1).
    """

    template_fields: Sequence[str] = (
        "service_id",
        "dataset_id",
        "dataset_type",
        "data",
        "on_batch_in_doubt",
        "batch_in_doubt_landed",
    )
    ui_color = "#e0f7fa"
    asset_alias = assets.AITEMS_SERVICES
    #: the name of this operator's retry record (kept on failure: a cleared task resumes)
    task_state = "aitems_row_push"

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        dataset_id: TemplatedId,
        dataset_type: Literal["user", "item", "interaction"] | str,
        data: Any,
        file_format: Literal["csv", "jsonl"] | None = None,
        batch_size: int = 1000,
        encoding: str = "utf-8",
        on_batch_in_doubt: Literal["fail", "resend", "skip"] | str = "fail",
        batch_in_doubt_landed: bool | str | None = None,
        aitems_conn_id: str = "aitems_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id
        self.dataset_id = dataset_id
        self.dataset_type = dataset_type
        self.data = data
        self.file_format = file_format
        self.batch_size = batch_size
        self.encoding = encoding
        self.on_batch_in_doubt = on_batch_in_doubt
        self.batch_in_doubt_landed = batch_in_doubt_landed
        self.aitems_conn_id = aitems_conn_id
        #: what lineage needs, kept by execute (the OpenLineage provider cannot reach XCom)
        self.run_result: dict[str, Any] | None = None
        self.run_source: Any = None

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    # --- input -------------------------------------------------------------------------------------

    def _check_input(self) -> tuple[str, str, str, Any, str]:
        """Every check that needs no request: ids, type, batch size, policy, the file and its format."""
        from airflow_provider_predone import files

        service_id = api.service_id_value(self.service_id)
        dataset_type = api.validate_dataset_type(self.dataset_type)
        dataset_id = dataset_id_value(self.dataset_id, "dataset_id", dataset_type)  # an id or the dataset task's result
        api.validate_batch_size(self.batch_size)
        if self.on_batch_in_doubt not in IN_DOUBT_POLICIES:
            raise InvalidInputError(
                f"on_batch_in_doubt must be one of {list(IN_DOUBT_POLICIES)}, got {self.on_batch_in_doubt!r}"
            )
        _landed(self.batch_in_doubt_landed)
        source = files.resolve("data", self.data, extensions=tuple(ROW_FORMATS))
        file_format = self.file_format or ROW_FORMATS[next(e for e in ROW_FORMATS if source.name.lower().endswith(e))]
        if file_format not in ("csv", "jsonl"):
            raise InvalidInputError(f"file_format must be 'csv' or 'jsonl', got {file_format!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise InvalidInputError(f"encoding: {self.encoding!r} is not a known text encoding") from None
        return service_id, dataset_id, dataset_type, source, file_format

    def _column_types(self, dataset_id: str) -> dict[str, str]:
        """The dataset's schema as column → type, to type CSV values (empty when the dataset names none)."""
        schema_name = self.hook.get_dataset(dataset_id).get("schemaName")
        if not isinstance(schema_name, str) or not schema_name:
            return {}
        fields = self.hook.get_schema(schema_name).get("fields")
        if not isinstance(fields, list):
            return {}
        return {str(f["name"]): str(f.get("type")) for f in fields if isinstance(f, dict) and "name" in f}

    def _rows(
        self, source: Any, file_format: str, dataset_type: str, types: dict[str, str]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line, row)`` of every row of the file, checked, streamed."""
        encoding = "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding
        with source.open() as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            if file_format == "csv":
                yield from self._csv_rows(source, text, dataset_type, types)
                return
            for line, content in enumerate(iter(lambda: text.readline(MAX_ROW_BYTES + 1), ""), start=1):
                where = f"{source.name} line {line}"
                if len(content) > MAX_ROW_BYTES:
                    raise InvalidInputError(f"data: {where} is longer than {MAX_ROW_BYTES} characters: not a row")
                if not content.strip():
                    continue
                try:
                    row = json.loads(content)
                except ValueError as exc:
                    raise InvalidInputError(f"data: {where} is not a JSON object ({exc})") from None
                yield line, api.validate_row(dataset_type, row, f"data: {where}")

    def _csv_rows(
        self, source: Any, text: IO[str], dataset_type: str, types: dict[str, str]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        reader = csv.reader(text)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise InvalidInputError(f"data: {source.name} is empty: it needs a header row") from None
        columns = list(types) if types else list(api.REQUIRED_COLUMNS[dataset_type])
        api.check_header(dataset_type, header, columns, f"data: {source.name}", exact=bool(types))
        for record in reader:
            line = reader.line_num
            if not any(value.strip() for value in record):
                continue
            where = f"data: {source.name} line {line}"
            if len(record) != len(header):
                raise InvalidInputError(f"{where} has {len(record)} values, the header {len(header)} columns")
            row = {
                name: _typed(value, types.get(name, "long" if name == "TIMESTAMP" else "string"), name, where)
                for name, value in zip(header, record, strict=True)
            }
            yield line, api.validate_row(dataset_type, row, where)

    def _batches(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[_Batch]:
        batch: list[dict[str, Any]] = []
        first = index = 0
        last = 0
        for line, row in rows:
            if not batch:
                first = line
            batch.append(row)
            last = line
            if len(batch) == self.batch_size:
                yield _Batch(index, first, last, batch)
                batch, index = [], index + 1
        if batch:
            yield _Batch(index, first, last, batch)

    # --- the push ----------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_predone._task_state import TaskState

        service_id, dataset_id, dataset_type, source, file_format = self._check_input()
        if file_format == "csv":  # the required columns, before the schema is read
            next(self._rows(source, file_format, dataset_type, {}), None)
        types = self._column_types(dataset_id) if file_format == "csv" else {}
        # Every row checked before the first push (streamed: memory holds one row).
        total = sum(1 for _ in self._rows(source, file_format, dataset_type, types))
        batches = -(-total // self.batch_size)
        self.log.info("%s: %d rows in %d batches of at most %d, all checked", source, total, batches, self.batch_size)
        record = TaskState(context, self.task_state)
        fingerprint = {
            "data": str(source),
            "size": source.size,
            "batch_size": self.batch_size,
            "service_id": service_id,
            "dataset_id": dataset_id,
        }
        state: dict[str, Any] = {"input": fingerprint, "acknowledged": 0, "in_doubt": None, "rows": 0, "resolved": []}
        earlier = record.get()
        if earlier:
            if earlier.get("input") != fingerprint:
                raise InvalidInputError(
                    f"an earlier try of this task pushed {earlier.get('acknowledged')} batches of another input "
                    f"({earlier.get('input')}); now {fingerprint}. Batches are counted in the input they came "
                    "from: restore that input (file and batch_size), or push the new one in a new DAG run"
                )
            state = earlier
            done = state["acknowledged"]
            self.log.info("An earlier try pushed batches 1 to %d of %d: resuming after them", done, batches)
        resumed_at = int(state["acknowledged"])
        hook = self.hook
        progress_at = time.monotonic() + PROGRESS_SECONDS
        for batch in self._batches(self._rows(source, file_format, dataset_type, types)):
            if batch.position < state["acknowledged"]:
                continue
            lines = f"lines {batch.first_line}-{batch.last_line} of {source.name}"
            label = f"batch {batch.position + 1} of {batches} ({lines})"
            if state["in_doubt"] == batch.position and self._decide(state, label, earlier=True) == "skip":
                state.update(acknowledged=batch.position + 1, in_doubt=None)
                record.set(state)
                continue
            state["in_doubt"] = batch.position  # written ahead: a crash while it is sent leaves it in doubt
            record.set(state)
            added = self._push(hook, record, state, label, service_id, dataset_id, dataset_type, batch.rows)
            state.update(acknowledged=batch.position + 1, in_doubt=None)
            state["rows"] += len(batch.rows) if added else 0
            record.set(state)
            if time.monotonic() >= progress_at or batch.position + 1 == batches:
                progress_at = time.monotonic() + PROGRESS_SECONDS
                done = batch.position + 1
                self.log.info("Pushed %d of %d batches (%d of %d rows)", done, batches, state["rows"], total)
        result = task_result(
            {
                "service_id": service_id,
                "dataset_id": dataset_id,
                "dataset_type": dataset_type,
                "rows": state["rows"],
                "batches": state["acknowledged"],
                "resumed_at": resumed_at or None,
                "in_doubt": state["resolved"] or None,
            }
        )
        record.clear()
        assets.emit(
            context,
            str(self.asset_alias),
            assets.aitems_service_uri(service_id),
            {"event": "rows_pushed", "dataset_id": dataset_id, "dataset_type": dataset_type, "rows": state["rows"]},
        )
        self.run_result, self.run_source = result, source.location
        return result

    def _decide(self, state: dict[str, Any], label: str, *, earlier: bool) -> str:
        """
        ``skip`` or ``resend`` for the batch in doubt (``state["in_doubt"]``), or fail naming it: an
        earlier try's batch by ``batch_in_doubt_landed`` if given, any batch by ``on_batch_in_doubt``.
        """
        landed = _landed(self.batch_in_doubt_landed) if earlier else None
        decision = str(self.on_batch_in_doubt) if landed is None else ("skip" if landed else "resend")
        if decision == "fail":
            what = "was sent by an earlier try with no answer (or the try ended while it was sent)"
            raise RowsInDoubtError(
                f"{label} {what}: the service may or may not have added it, and it cannot be read back"
            )
        state["resolved"] = [*state["resolved"], state["in_doubt"] + 1]
        why = "batch_in_doubt_landed" if landed is not None else "on_batch_in_doubt"
        effect = "skipped (it may be missing)" if decision == "skip" else "sent again (it may be added twice)"
        if landed is not None:
            effect = "skipped: it was added" if landed else "sent again: it was not added"
        self.log.warning("%s is in doubt: %s, as %s says", label, effect, why)
        return decision

    def _push(
        self,
        hook: AitemsHook,
        record: TaskState,
        state: dict[str, Any],
        label: str,
        service_id: str,
        dataset_id: str,
        dataset_type: str,
        rows: list[dict[str, Any]],
    ) -> bool:
        """
        Send one batch: ``True`` once acknowledged, ``False`` when skipped in doubt. In doubt, it
        fails naming the batch unless ``on_batch_in_doubt`` decides; refused by an answer, it was
        not applied (so it is no longer in doubt) and the error is raised for a retry.
        """
        while True:
            try:
                hook.push_rows(service_id, dataset_id, dataset_type, rows)
                return True
            except RowsInDoubtError as exc:
                if self.on_batch_in_doubt == "fail":
                    raise RowsInDoubtError(f"{label} is in doubt: {reason(exc)}", endpoint=exc.endpoint) from None
                if self._decide(state, label, earlier=False) == "skip":
                    return False
            except Exception:
                state["in_doubt"] = None
                record.set(state)
                raise

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The rows file → the AiTEMS dataset and service it was pushed into."""
        from airflow_provider_predone import lineage

        if self.run_result is None:
            return lineage.no_lineage()
        return lineage.push_rows_lineage(
            source=self.run_source,
            service_id=self.run_result["service_id"],
            dataset_id=self.run_result["dataset_id"],
            rows=self.run_result.get("rows"),
            csv_file=str(self.run_source).lower().endswith(".csv"),
        )


def _landed(value: Any) -> bool | None:
    """``batch_in_doubt_landed`` as given or rendered from a template (``"true"``, ``"False"``)."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("", "none"):
        return None
    if word not in ("true", "false"):
        raise InvalidInputError(f"batch_in_doubt_landed must be true, false or None, got {value!r}")
    return word == "true"


def _typed(value: str, kind: str, column: str, where: str) -> Any:
    """A CSV value as its schema type says (``int``/``long``, ``boolean``, ``null``, else text)."""
    if kind in ("int", "long"):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidInputError(f"{where}: {column} must be an integer, got {snippet(value, 60)!r}") from None
    if kind == "boolean":
        word = value.strip().lower()
        if word not in ("true", "false"):
            raise InvalidInputError(f"{where}: {column} must be true or false, got {snippet(value, 60)!r}")
        return word == "true"
    if kind == "null" or (value == "" and kind != "string"):
        return None
    return value


# --- recommendations ---

#: The asset alias the recommendations operator emits its output files' events through.
RECOMMENDATIONS_UPDATES = "aitems_recommendation_files"


class AitemsRecommendationsOperator(ProviderOperator):
    """
    Write the recommendations of every target of a file (or the popular items) to CSV or JSON Lines.

    Each target is one request to the recommendations lookup endpoint, which NAVER labels a
    *test* of the training result: AiTEMS documents no batch inference and no export, so this is
    the only way to read recommendations out; mind NAVER's rate limits (the 429 answers are
    retried). The lookups run concurrently through the batch-scoring engine (late lookups are
    sent once more, failed ones retried without holding the others) and are written in input
    order, the targets streamed (memory does not grow with their number). The output is written
    to a ``.part`` file beside it that replaces the previous output only when whole. A target
    that fails for good ends the run, naming it and its input line. A target the model does not
    know gets no recommendation (NAVER does not document that answer; the emulator answers an
    empty list): a JSON line with ``"values": []``, no CSV row, counted in ``empty``.

    Before any lookup, the service's latest training of ``train_type`` must be ``completed``
    with recommendations (``inference: true``).

    :param service_id: the AiTEMS service.
    :param targets: a file of targets (a local path or any ``ObjectStoragePath``): one id per
        line, or the ``target_column`` of a CSV with a header; USER_IDs for
        ``personalRecommend``, ITEM_IDs for ``relatedItem``. Or ``"pop"``: the popular items
        (one lookup of type ``pop``, written for the target ``pop``).
    :param output_data: where to write (a local path or any ``ObjectStoragePath``).
    :param train_type: ``personalRecommend``, ``relatedItem`` or ``pop``; default
        ``pop`` for ``targets="pop"``, else ``personalRecommend``.
    :param target_column: the CSV column holding the targets; ``None``: one id per line.
    :param output_format: ``csv`` (``target_id,rank,item_id``) or ``jsonl``
        (``{"target": ..., "values": [...]}`` per line); default from the output's suffix
        (``.csv``, ``.jsonl``, ``.ndjson``).
    :param max_in_flight: lookups in flight at once (1 to 256), hedges included.
    :param lookup_timeout: seconds one lookup may take before it is sent again (a transient
        failure, retried as the connection's ``max_retries`` allow).
    :param hedge: send a lookup once more when its answer is later than recent answers (at most
        5 % of the requests); the first answer is kept.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"output", "targets", "rows", "empty", "service_id", "train_type", "version"}``:
        targets written, recommendations written, targets with none, and the training version.
    """

    template_fields: Sequence[str] = ("service_id", "targets", "output_data", "train_type", "target_column")
    ui_color = "#e0f7fa"
    asset_alias = RECOMMENDATIONS_UPDATES

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        targets: Any,
        output_data: Any,
        train_type: Literal["personalRecommend", "relatedItem", "pop"] | XComArg | None = None,
        target_column: str | XComArg | None = None,
        output_format: Literal["csv", "jsonl"] | None = None,
        max_in_flight: int = 8,
        lookup_timeout: float = 10.0,
        hedge: bool = True,
        aitems_conn_id: str = "aitems_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id
        self.targets = targets
        self.output_data = output_data
        self.train_type = train_type
        self.target_column = target_column
        self.output_format = output_format
        self.max_in_flight = max_in_flight
        self.lookup_timeout = lookup_timeout
        self.hedge = hedge
        self.aitems_conn_id = aitems_conn_id

    @cached_property
    def hook(self) -> AitemsHook:
        from airflow_provider_predone.hooks.aitems import AitemsHook

        return AitemsHook(aitems_conn_id=self.aitems_conn_id)

    #: What the run returned, for ``get_openlineage_facets_on_complete`` (run in another process).
    run_result: dict[str, Any] | None = None

    def _train_type(self, pop: bool) -> str:
        from airflow_provider_predone.exceptions import InvalidInputError

        train_type = self.train_type or ("pop" if pop else "personalRecommend")
        if train_type not in api.TRAIN_TYPES:
            raise InvalidInputError(f"train_type must be one of {list(api.TRAIN_TYPES)}, got {train_type!r}")
        if pop != (train_type == "pop"):
            raise InvalidInputError(
                'train_type "pop" takes no targets: pass targets="pop"'
                if not pop
                else f'targets="pop" looks up the popular items: train_type must be "pop", got {train_type!r}'
            )
        return train_type

    def execute(self, context: Context) -> Any:
        from airflow_provider_predone import files
        from airflow_provider_predone.exceptions import InvalidInputError
        from airflow_provider_predone.recommendations import POP, BatchLookup, TargetFile, output_format

        # Every input is checked before the first request.
        service_id = api.service_id_value(self.service_id, "service_id")
        pop = isinstance(self.targets, str) and self.targets.strip() == POP
        train_type = self._train_type(pop)
        concurrency = self.max_in_flight
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 256:
            raise InvalidInputError(f"max_in_flight must be an integer from 1 to 256, got {concurrency!r}")
        timeout = self.lookup_timeout
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
            raise InvalidInputError(f"lookup_timeout must be a number of seconds > 0, got {timeout!r}")
        column = self.target_column  # rendered by now: a string or None
        if column is not None and (pop or not isinstance(column, str) or not column.strip()):
            raise InvalidInputError("target_column names the CSV column of a targets file (not with targets='pop')")
        output = files.output_location("output_data", self.output_data)
        kind = output_format(output, self.output_format)
        source = None if pop else TargetFile(files.resolve("targets", self.targets, extensions=()), column)
        total = source.check() if source is not None else 1
        version = self._trained_version(service_id, train_type)
        self.log.info(
            "Looking up %s recommendations of %d target(s) of service %s (training %s), %d in flight, into %s",
            train_type,
            total,
            service_id,
            version,
            concurrency,
            output,
        )
        lookup = BatchLookup(
            self.hook,
            service_id,
            train_type,
            concurrency=concurrency,
            log=self.log,
            timeout=float(timeout),
            hedge=self.hedge,
        )
        counts = lookup.run(source, total, output, kind)
        assets.emit(
            context,
            RECOMMENDATIONS_UPDATES,
            _file_uri(output),
            {
                "event": "recommendations",
                "service_id": service_id,
                "train_type": train_type,
                "version": version,
                "targets": counts.targets,
                "rows": counts.rows,
            },
        )
        self.run_result = task_result(
            {
                "output": str(output),
                "targets": counts.targets,
                "rows": counts.rows,
                "empty": counts.empty,
                "service_id": service_id,
                "train_type": train_type,
                "version": version,
            }
        )
        return self.finished(self.run_result)

    def _trained_version(self, service_id: str, train_type: str) -> str:
        """The version of the latest training of ``train_type``, if it completed with recommendations."""
        from airflow_provider_predone.exceptions import JobNotFinishedError
        from airflow_provider_predone.protocol.common import snippet

        latest = next((t for t in self.hook.list_trainings(service_id) if t.get("type") == train_type), None)
        if latest is None:
            raise JobNotFinishedError(
                f"Service {service_id} has no {train_type} training: train it first (AitemsTrainOperator)",
                endpoint="List trainings",
            )
        status, version = latest.get("status"), latest.get("version")
        if status != "completed" or latest.get("inference") is False:
            raise JobNotFinishedError(
                f"The latest {train_type} training of service {service_id} (version {version}) is "
                f"{snippet(str(status), 60)!r}, not completed with recommendations: nothing was looked up",
                endpoint="List trainings",
            )
        return str(version)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The service's trained model (and the targets file) → the recommendations file."""
        from airflow_provider_predone import lineage

        result = self.run_result
        if result is None:
            return lineage.no_lineage()
        return lineage.recommendations_lineage(
            service_id=result["service_id"],
            train_type=result["train_type"],
            version=result.get("version"),
            targets=None if result["train_type"] == "pop" else self.targets,
            output=result["output"],
            targets_written=result.get("targets"),
            rows=result.get("rows"),
        )


def _file_uri(location: Any) -> str:
    """An output's asset URI: ``file:///abs/path`` for a local file, the URL for object storage."""
    from airflow_provider_predone import files

    if not files.in_object_storage(location):
        return Path(location).resolve().as_uri()
    return str(location)
