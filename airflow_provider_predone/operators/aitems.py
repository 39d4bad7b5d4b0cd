"""Operator that trains AiTEMS recommendation models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_predone import assets
from airflow_provider_predone._task_state import TaskState
from airflow_provider_predone.operators.base import TIMEOUT, JobOperator, TemplatedId, task_result
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.waiting import validate_event

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, XComArg

    from airflow_provider_predone.hooks.aitems import AitemsHook


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

    def execute(self, context: Context) -> Any:
        service_id = path_id(self.service_id, "service_id")
        types = api.validate_train_types(self.train_types)
        hp_config = api.validate_hp_config(self.hp_config)
        self.check_waiting()
        state = TaskState(context, "aitems_training")
        recorded = state.get()
        if recorded and recorded.get("service_id") == service_id and recorded.get("versions"):
            versions = recorded["versions"]
            self.log.info("Re-attaching to trainings %s requested by an earlier try", versions)
        else:
            versions = self._request(state, service_id, types, hp_config, recorded)
        if not self.wait_for_completion:
            return task_result({"service_id": service_id, "versions": versions, "statuses": {}})
        from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

        trigger = AitemsTrainingTrigger(service_id=service_id, versions=versions, **self.trigger_kwargs())
        return self.wait_for(context, trigger)

    def _request(
        self,
        state: TaskState,
        service_id: str,
        types: list[str],
        hp_config: dict[str, Any],
        recorded: dict[str, Any] | None,
    ) -> dict[str, str]:
        hook = self.hook
        if recorded and recorded.get("service_id") == service_id:
            # An earlier try recorded what it saw before requesting; if new versions exist, it got through.
            before = recorded["before"]
            now = api.latest_versions(hook.list_trainings(service_id))
            if all(now.get(t) not in (None, before.get(t)) for t in types):
                versions = {t: now[t] for t in types}
                state.set({"service_id": service_id, "before": before, "versions": versions})
                return versions
        before = api.latest_versions(hook.list_trainings(service_id))
        state.set({"service_id": service_id, "before": before, "versions": None})
        versions = hook.request_training(service_id, types, hp_config=hp_config, description=self.description)
        state.set({"service_id": service_id, "before": before, "versions": versions})
        self.log.info("Requested AiTEMS training of %s: versions %s", service_id, versions)
        return versions

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        event = validate_event(event, "service_id", "versions")
        TaskState(context, "aitems_training").clear()
        for train_type, version in event["versions"].items():
            extra = {"event": "trained", "version": version}
            assets.emit(context, self.asset_alias, assets.aitems_uri(event["service_id"], train_type), extra)
        return task_result(
            {
                "service_id": event["service_id"],
                "versions": event["versions"],
                "statuses": event.get("statuses", {}),
            }
        )
