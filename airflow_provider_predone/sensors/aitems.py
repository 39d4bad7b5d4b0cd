"""Sensor that waits for an AiTEMS training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_predone.sensors.base import JobSensor


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
    trigger_path = "airflow_provider_predone.triggers.aitems.AitemsTrainingTrigger"
    id_fields = ("service_id", "versions")
    conn_field = "aitems_conn_id"

    def __init__(
        self,
        *,
        service_id: str,
        train_type: str,
        version: str,
        aitems_conn_id: str = "aitems_default",
        **kwargs: Any,
    ) -> None:
        self.service_id = service_id
        self.train_type = train_type
        self.version = version
        self.aitems_conn_id = aitems_conn_id
        super().__init__(**kwargs)

    @property
    def versions(self) -> dict[str, str]:
        return {self.train_type: self.version}
