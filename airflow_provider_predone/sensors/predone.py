"""
Sensors that wait for Prediction One trainings, retrain jobs and prediction APIs.

Deferrable per Airflow's convention (poke once, then defer); with ``start_from_trigger=True``
they start straight in the triggerer so waiting never occupies a worker slot. ``execute()``
always works too (``dag.test()`` calls it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_predone.operators.predone import model_id_value
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.sensors.base import JobSensor

if TYPE_CHECKING:
    from airflow_provider_predone.hooks.predone import PredictionOneHook


class _PredictionOneSensor(JobSensor):
    conn_field = "predone_conn_id"

    def __init__(self, *, predone_conn_id: str = "predone_default", **kwargs: Any) -> None:
        self.predone_conn_id = predone_conn_id
        super().__init__(**kwargs)

    @cached_property
    def hook(self) -> PredictionOneHook:
        from airflow_provider_predone.hooks.predone import PredictionOneHook

        return PredictionOneHook(predone_conn_id=self.predone_conn_id)


class PredictionOneTrainSensor(_PredictionOneSensor):
    """
    Wait for a training to finish.

    :param external_process_id: the training (from :class:`PredictionOneTrainOperator` with
        ``wait_for_completion=False``, or Train Data Upload).
    """

    template_fields: Sequence[str] = ("external_process_id",)
    trigger_path = "airflow_provider_predone.triggers.predone.PredictionOneTrainTrigger"
    default_statuses = api.TRAIN_STATUSES
    id_fields = ("external_process_id",)

    def __init__(self, *, external_process_id: str, **kwargs: Any) -> None:
        self.external_process_id = external_process_id
        super().__init__(**kwargs)

    def current_status(self) -> tuple[str, str | None]:
        status = self.hook.get_train_status(path_id(self.external_process_id, "external_process_id"))
        return status.status, status.message


class PredictionOneRetrainSensor(_PredictionOneSensor):
    """
    Wait for a retrain job to finish.

    :param retrain_job_id: the retrain job.
    :param model_id: the retrained model (its retrain API key authorises the status check).
    """

    template_fields: Sequence[str] = ("retrain_job_id", "model_id")
    trigger_path = "airflow_provider_predone.triggers.predone.PredictionOneRetrainTrigger"
    default_statuses = api.RETRAIN_STATUSES
    id_fields = ("retrain_job_id", "model_id")

    def __init__(self, *, retrain_job_id: str, model_id: Any, **kwargs: Any) -> None:
        self.retrain_job_id = retrain_job_id
        self.model_id = model_id
        super().__init__(**kwargs)

    def current_status(self) -> tuple[str, str | None]:
        status = self.hook.get_retrain_status(
            path_id(self.retrain_job_id, "retrain_job_id"), model_id_value(self.model_id)
        )
        return status.status, status.message


class PredictionOnePredictionApiSensor(_PredictionOneSensor):
    """
    Wait for a prediction API (classifier) to be ``running``.

    :param classifier_id: the prediction API.
    """

    template_fields: Sequence[str] = ("classifier_id",)
    trigger_path = "airflow_provider_predone.triggers.predone.PredictionOnePredictionApiTrigger"
    default_statuses = api.PREDICTION_API_STATUSES
    id_fields = ("classifier_id",)

    def __init__(self, *, classifier_id: str, **kwargs: Any) -> None:
        self.classifier_id = classifier_id
        super().__init__(**kwargs)

    def current_status(self) -> tuple[str, str | None]:
        return self.hook.get_prediction_api(path_id(self.classifier_id, "classifier_id")).status, None
