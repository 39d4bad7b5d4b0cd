"""Operator that trains AiTEMS recommendation models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_predone import assets
from airflow_provider_predone.operators.base import Finished, JobOperator, TemplatedId, task_result
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.waiting import TIMEOUT

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, XComArg

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
    :param description: the training description.
    :param wait_for_completion: wait until every training ends.
    :param deferrable: wait in the triggerer.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta.
    :param aitems_conn_id: the ``aitems`` connection.
    :return: ``{"service_id", "versions": {type: version}, "statuses": {type: status}}``.
    """

    template_fields: Sequence[str] = ("service_id", "train_types", "hp_config", "description")
    template_fields_renderers = {"hp_config": "json"}
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
        service_id = path_id(self.service_id, "service_id")
        return service_id, api.validate_train_types(self.train_types), api.validate_hp_config(self.hp_config)

    def describe_job(self, job: dict[str, Any]) -> str:
        return f"AiTEMS trainings {job.get('versions')} of service {job.get('service_id')}"

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        return job.get("service_id") == prepared[0] and bool(job.get("versions"))

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        service_id, types, hp_config = prepared
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
        versions = hook.request_training(service_id, types, hp_config=hp_config, description=self.description)
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


# --- interval ---


# --- recommendations ---
