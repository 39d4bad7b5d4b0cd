"""Operator that trains AiTEMS recommendation models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_predone import assets
from airflow_provider_predone.operators.base import Finished, JobOperator, ProviderOperator, TemplatedId, task_result
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import path_id
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
        return task_result({"service_id": service_id, "versions": versions, "statuses": statuses}), events


# --- data (schemas and datasets) ---


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
        train_type: str | None = None,
        target_column: str | None = None,
        output_format: str | None = None,
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
        if self.target_column is not None and (pop or not str(self.target_column).strip()):
            raise InvalidInputError("target_column names the CSV column of a targets file (not with targets='pop')")
        output = files.output_location("output_data", self.output_data)
        kind = output_format(output, self.output_format)
        source = None if pop else TargetFile(files.resolve("targets", self.targets, extensions=()), self.target_column)
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
            {"service_id": service_id, "train_type": train_type, "version": version, "targets": counts.targets},
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
    if isinstance(location, Path):
        return location.resolve().as_uri()
    return str(location)
