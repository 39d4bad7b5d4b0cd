"""Sensor that waits for an AiTEMS training."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.operators.base import TemplatedId
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.aitems import TRAIN_TYPES, service_id_value
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.sensors.base import JobSensor

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, XComArg

    from airflow_provider_predone.triggers.base import StatusTrigger


def check_versions(versions: dict[Any, Any], name: str) -> dict[Any, Any]:
    """Check each version of ``{train_type: version}`` as a URL path id, naming it; the same dict."""
    for key, item in versions.items():
        path_id(item, f"{name}[{key!r}]")
    return versions


class AitemsTrainingSensor(JobSensor):
    """
    Wait for one AiTEMS training (a type and version of a service) to be ``completed``.

    Fails when it ends ``requestFailed``, ``refinedFailed``, ``learningFailed`` (or ``stopping``).

    :param service_id: the service.
    :param train_type: ``personalRecommend``, ``relatedItem`` or ``pop``.
    :param version: the training version (from :class:`AitemsTrainOperator` or List trainings).
    :param aitems_conn_id: the ``aitems`` connection.
    """

    template_fields: Sequence[str] = ("service_id", "train_type", "version")
    id_fields = ("service_id", "versions")
    id_checks = {"service_id": service_id_value, "versions": check_versions}
    conn_field = "aitems_conn_id"

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

        return AitemsTrainingTrigger

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        train_type: str | XComArg,
        version: TemplatedId,
        aitems_conn_id: str = "aitems_default",
        deferrable: bool | None = None,
        poke_interval: float | timedelta = 60,
        timeout: float | timedelta | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.service_id = service_id
        self.train_type = train_type
        self.version = version
        self.aitems_conn_id = aitems_conn_id
        super().__init__(
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            start_from_trigger=start_from_trigger,
            end_from_trigger=end_from_trigger,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )

    @property
    def versions(self) -> dict[Any, Any]:  # rendered by then: {train_type: version}
        return {self.train_type: self.version}


# --- data (schemas and datasets) ---


class AitemsDatasetSensor(JobSensor):
    """
    Wait for an AiTEMS dataset to be ``enable``: its files read from Object Storage and checked.

    Fails on ``upload_failed``, ``disable`` or ``deleting``, with the service's message.

    :param dataset_id: the dataset (from :class:`~..operators.aitems.AitemsDatasetOperator` or List datasets).
    :param aitems_conn_id: the ``aitems`` connection.
    """

    template_fields: Sequence[str] = ("dataset_id",)
    id_fields = ("dataset_id",)
    conn_field = "aitems_conn_id"

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.aitems import AitemsDatasetTrigger

        return AitemsDatasetTrigger

    def __init__(
        self,
        *,
        dataset_id: TemplatedId,
        aitems_conn_id: str = "aitems_default",
        deferrable: bool | None = None,
        poke_interval: float | timedelta = 60,
        timeout: float | timedelta | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.dataset_id = dataset_id
        self.aitems_conn_id = aitems_conn_id
        super().__init__(
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            start_from_trigger=start_from_trigger,
            end_from_trigger=end_from_trigger,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )


# --- services ---


class AitemsServiceSensor(JobSensor):
    """
    Wait for an AiTEMS service to be able to learn: ``learnable`` (its three datasets linked),
    or ``scheduled`` for an interval service. Fails on ``disable``, ``deleting`` or ``deleted``.

    :param service_id: the service id (from :class:`~..operators.aitems.AitemsServiceOperator`
        or ``AitemsHook().find_service(name)``); a service name is refused before any request.
    :param aitems_conn_id: the ``aitems`` connection.
    """

    template_fields: Sequence[str] = ("service_id",)
    id_fields = ("service_id",)
    id_checks = {"service_id": service_id_value}
    conn_field = "aitems_conn_id"

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.aitems import AitemsServiceTrigger

        return AitemsServiceTrigger

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        aitems_conn_id: str = "aitems_default",
        deferrable: bool | None = None,
        poke_interval: float | timedelta = 60,
        timeout: float | timedelta | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.service_id = service_id
        self.aitems_conn_id = aitems_conn_id
        super().__init__(
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            start_from_trigger=start_from_trigger,
            end_from_trigger=end_from_trigger,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )


# --- interval ---


def _train_type(value: Any, name: str) -> str:
    if value not in TRAIN_TYPES:
        raise InvalidInputError(f"{name} must be one of {list(TRAIN_TYPES)}, got {value!r}")
    return str(value)


def _optional_id(value: Any, name: str) -> Any:
    return None if value in (None, "") else path_id(value, name)


class AitemsUpdateSensor(JobSensor):
    """
    Wait for an incremental update of an interval service (the rows pushed, applied to a
    training version) to be ``completed``; fails when it ends ``failed`` or ``*Failed``.

    :param service_id: the interval service.
    :param train_type: ``personalRecommend``, ``relatedItem`` or ``pop``.
    :param train_version: the training version the update applies to (``versions`` of
        :class:`~..operators.aitems.AitemsScheduleOperator`); ``None`` reads the type's newest
        training once, before the first check.
    :param update_version: the update to wait for; ``None`` waits for the newest the history lists.
    :param aitems_conn_id: the ``aitems`` connection.
    """

    template_fields: Sequence[str] = ("service_id", "train_type", "train_version", "update_version")
    id_fields = ("service_id", "train_type", "train_version", "update_version")
    id_checks = {"service_id": service_id_value, "train_type": _train_type, "update_version": _optional_id}
    conn_field = "aitems_conn_id"

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.aitems import AitemsUpdateTrigger

        return AitemsUpdateTrigger

    def __init__(
        self,
        *,
        service_id: TemplatedId,
        train_type: str | XComArg,
        train_version: TemplatedId | None = None,
        update_version: TemplatedId | None = None,
        aitems_conn_id: str = "aitems_default",
        deferrable: bool | None = None,
        poke_interval: float | timedelta = 60,
        timeout: float | timedelta | None = None,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.service_id = service_id
        self.train_type = train_type
        self.train_version = train_version
        self.update_version = update_version
        self.aitems_conn_id = aitems_conn_id
        super().__init__(
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            success_statuses=success_statuses,
            failure_statuses=failure_statuses,
            running_statuses=running_statuses,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        if self.train_version in (None, ""):
            from airflow_provider_predone.hooks.aitems import AitemsHook

            service_id = service_id_value(self.service_id)
            train_type = _train_type(self.train_type, "train_type")
            hook = AitemsHook(aitems_conn_id=self.aitems_conn_id)
            version = api.latest_versions(hook.list_trainings(service_id)).get(train_type)
            if version is None:
                raise InvalidInputError(
                    f"train_version: service {service_id} has no {train_type} training yet (start its cycle "
                    "training with AitemsScheduleOperator, or pass train_version)"
                )
            self.log.info("Waiting for an update of %s training %s", train_type, version)
            self.train_version = version
        return super().execute(context)


# --- recommendations ---
