"""Triggers that wait for Prediction One trainings, retrain jobs and prediction APIs."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from airflow_provider_predone.hooks.predone import PredictionOneAsyncClient, PredictionOneHook
from airflow_provider_predone.operators._xcom import model_id_value
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import ApiRequest
from airflow_provider_predone.triggers.base import JobStatus, StatusTrigger


class _PredictionOneTrigger(StatusTrigger):
    """A Prediction One wait: one status request (:meth:`request`) and how its answer reads (:meth:`status`)."""

    def client(self) -> AbstractAsyncContextManager[PredictionOneAsyncClient]:
        return PredictionOneHook(predone_conn_id=self.conn_id).async_client()

    def request(self) -> ApiRequest[Any]:
        """The status check, described once for the async client and the sync hook alike."""
        raise NotImplementedError

    def status(self, answer: Any) -> JobStatus:
        """The job's status in the answer of :meth:`request`."""
        raise NotImplementedError

    async def fetch(self, client: PredictionOneAsyncClient) -> JobStatus:
        return self.status(await client.call(self.request()))

    def fetch_sync(self, hook: PredictionOneHook) -> JobStatus:
        """The same status check through the sync hook (a task's check before deferring)."""
        return self.status(hook.call(self.request()))


class PredictionOneTrainTrigger(_PredictionOneTrigger):
    """
    Waits until a training (``external_process_id``) is ``finished`` or fails.

    :param external_process_id: from Train Data Upload / Train.
    """

    default_statuses = api.TRAIN_STATUSES
    job_noun = "training"

    def __init__(self, external_process_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.external_process_id = external_process_id

    def job_ids(self) -> dict[str, Any]:
        return {"external_process_id": self.external_process_id}

    def request(self) -> ApiRequest[api.TrainStatus]:
        return api.get_train_status(self.external_process_id)

    def status(self, answer: api.TrainStatus) -> JobStatus:
        return JobStatus(answer.status, answer.message, {"updated_datetime": answer.updated_datetime})


class PredictionOneRetrainTrigger(_PredictionOneTrigger):
    """
    Waits until a retrain job is ``job_finished`` or fails.

    :param retrain_job_id: from Retrain Data Upload.
    :param model_id: the retrained model (its retrain API key authorises the status check).
    """

    default_statuses = api.RETRAIN_STATUSES
    job_noun = "retrain job"

    def __init__(self, retrain_job_id: str, model_id: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retrain_job_id = retrain_job_id
        self.model_id = model_id_value(model_id)

    def job_ids(self) -> dict[str, Any]:
        return {"retrain_job_id": self.retrain_job_id, "model_id": self.model_id}

    def request(self) -> ApiRequest[api.RetrainStatus]:
        return api.get_retrain_status(self.retrain_job_id, self.model_id)

    def status(self, answer: api.RetrainStatus) -> JobStatus:
        return JobStatus(answer.status, answer.message)


class PredictionOnePredictionApiTrigger(_PredictionOneTrigger):
    """
    Waits until a prediction API (classifier) is ``running``.

    :param classifier_id: the prediction API.
    """

    default_statuses = api.PREDICTION_API_STATUSES
    job_noun = "prediction API"

    def __init__(self, classifier_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classifier_id = classifier_id

    def job_ids(self) -> dict[str, Any]:
        return {"classifier_id": self.classifier_id}

    def request(self) -> ApiRequest[api.PredictionApi]:
        return api.get_prediction_api(self.classifier_id)

    def status(self, answer: api.PredictionApi) -> JobStatus:
        return JobStatus(answer.status, None, {"model_id": answer.model_id, "version": answer.version})
