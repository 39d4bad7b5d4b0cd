"""
Sensors that wait for Prediction One trainings, retrain jobs and prediction APIs.

Deferrable per Airflow's convention (poke once, then defer); with ``start_from_trigger=True``
they start straight in the triggerer so waiting never occupies a worker slot. ``execute()``
always works too (``dag.test()`` calls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_predone.operators._xcom import model_id_value
from airflow_provider_predone.operators.base import TemplatedId
from airflow_provider_predone.sensors.base import JobSensor

if TYPE_CHECKING:
    from airflow_provider_predone.triggers.base import StatusTrigger


class _PredictionOneSensor(JobSensor):
    conn_field = "predone_conn_id"

    def __init__(self, *, predone_conn_id: str = "predone_default", **kwargs: Any) -> None:
        self.predone_conn_id = predone_conn_id
        super().__init__(**kwargs)


class PredictionOneTrainSensor(_PredictionOneSensor):
    """
    Wait for a training to finish.

    :param external_process_id: the training (from :class:`PredictionOneTrainOperator` with
        ``wait_for_completion=False``, or Train Data Upload).
    """

    template_fields: Sequence[str] = ("external_process_id",)
    id_fields = ("external_process_id",)

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

        return PredictionOneTrainTrigger

    def __init__(
        self,
        *,
        external_process_id: TemplatedId,
        predone_conn_id: str = "predone_default",
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
        self.external_process_id = external_process_id
        super().__init__(
            predone_conn_id=predone_conn_id,
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


class PredictionOneRetrainSensor(_PredictionOneSensor):
    """
    Wait for a retrain job to finish.

    :param retrain_job_id: the retrain job.
    :param model_id: the retrained model (its retrain API key authorises the status check).
    """

    template_fields: Sequence[str] = ("retrain_job_id", "model_id")
    id_fields = ("retrain_job_id", "model_id")
    id_checks = {"model_id": model_id_value}  # a model id, or the train task's whole result

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.predone import PredictionOneRetrainTrigger

        return PredictionOneRetrainTrigger

    def __init__(
        self,
        *,
        retrain_job_id: TemplatedId,
        model_id: TemplatedId,
        predone_conn_id: str = "predone_default",
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
        self.retrain_job_id = retrain_job_id
        self.model_id = model_id
        super().__init__(
            predone_conn_id=predone_conn_id,
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


class PredictionOnePredictionApiSensor(_PredictionOneSensor):
    """
    Wait for a prediction API (classifier) to be ``running``.

    :param classifier_id: the prediction API.
    """

    template_fields: Sequence[str] = ("classifier_id",)
    id_fields = ("classifier_id",)

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        from airflow_provider_predone.triggers.predone import PredictionOnePredictionApiTrigger

        return PredictionOnePredictionApiTrigger

    def __init__(
        self,
        *,
        classifier_id: TemplatedId,
        predone_conn_id: str = "predone_default",
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
        self.classifier_id = classifier_id
        super().__init__(
            predone_conn_id=predone_conn_id,
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
