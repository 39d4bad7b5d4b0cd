"""Sensor that waits for an AiTEMS training."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_predone.operators.base import TemplatedId
from airflow_provider_predone.protocol.aitems import service_id_value
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.sensors.base import JobSensor

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import XComArg

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


# --- recommendations ---
