"""Trigger that waits for AiTEMS trainings."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from airflow_provider_predone.hooks.aitems import AitemsAsyncClient, AitemsHook
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import ApiRequest, Phase, snippet
from airflow_provider_predone.triggers.base import JobStatus, StatusTrigger


class AitemsTrainingTrigger(StatusTrigger):
    """
    Waits until every listed training of a service is ``completed``, or one fails.

    :param service_id: the AiTEMS service.
    :param versions: training type → version to watch (e.g. ``{"pop": "maqll1234"}``).
    """

    default_statuses = api.TRAINING_STATUSES
    job_noun = "AiTEMS training"

    def __init__(self, service_id: str, versions: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id
        self.versions = dict(versions)

    def job_ids(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "versions": self.versions}

    def client(self) -> AbstractAsyncContextManager[AitemsAsyncClient]:
        return AitemsHook(aitems_conn_id=self.conn_id).async_client()

    async def fetch(self, client: AitemsAsyncClient) -> JobStatus:
        statuses = {}
        for train_type, version in self.versions.items():
            training = await client.call(api.get_training(self.service_id, train_type, version))
            statuses[train_type] = str(training["status"])
        return self.observed(statuses)

    def observed(self, statuses: dict[str, str]) -> JobStatus:
        """The trainings' statuses (type → status) as one status of the whole (also for a task's sync check)."""
        details = {"statuses": statuses}
        sets = self.statuses
        failed = {t: s for t, s in statuses.items() if sets.classify(s) is Phase.FAILURE}
        if failed:
            train_type, status = next(iter(failed.items()))
            return JobStatus(status, f"training type {train_type!r} ended {status!r}", details)
        running = [s for s in statuses.values() if sets.classify(s) is not Phase.SUCCESS]
        # All complete: any success status stands for the whole; else the first one still running.
        return JobStatus(running[0] if running else next(iter(statuses.values())), None, details)


# --- data (schemas and datasets) ---


class AitemsDatasetTrigger(StatusTrigger):
    """
    Waits until an AiTEMS dataset is ``enable`` (its files read and checked by the service),
    or fails with the service's message on ``upload_failed``, ``disable`` or ``deleting``.

    :param dataset_id: the dataset.
    """

    default_statuses = api.DATASET_STATUSES
    job_noun = "AiTEMS dataset"

    def __init__(self, dataset_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id

    def job_ids(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id}

    def client(self) -> AbstractAsyncContextManager[AitemsAsyncClient]:
        return AitemsHook(aitems_conn_id=self.conn_id).async_client()

    async def fetch(self, client: AitemsAsyncClient) -> JobStatus:
        return self.observed(await client.call(api.get_dataset(self.dataset_id)))

    def observed(self, dataset: dict[str, Any]) -> JobStatus:
        """A dataset's answer as a status (also for a task's sync check before it defers)."""
        # Bounded: the answer's fields go into the event and the task's XCom.
        details = {key: snippet(dataset[key], 200) for key in ("name", "type") if isinstance(dataset.get(key), str)}
        return JobStatus(str(dataset["status"]), api.dataset_message(dataset), details)


# --- services ---


class AitemsServiceTrigger(StatusTrigger):
    """
    Waits until an AiTEMS service can learn (``learnable``, or ``scheduled`` for an interval
    service), or fails when it is ``disable``, ``deleting`` or ``deleted``.

    :param service_id: the service.
    """

    default_statuses = api.SERVICE_STATUSES
    job_noun = "AiTEMS service"

    def __init__(self, service_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id

    def job_ids(self) -> dict[str, Any]:
        return {"service_id": self.service_id}

    def client(self) -> AbstractAsyncContextManager[AitemsAsyncClient]:
        return AitemsHook(aitems_conn_id=self.conn_id).async_client()

    async def fetch(self, client: AitemsAsyncClient) -> JobStatus:
        return self.observed(await client.call(api.get_service(self.service_id)))

    def observed(self, service: dict[str, Any]) -> JobStatus:
        """A service's answer as a status (also for a task's sync check before it defers)."""
        # Bounded: the answer's fields go into the event and the task's XCom.
        details = {key: snippet(service[key], 200) for key in ("name", "type") if isinstance(service.get(key), str)}
        return JobStatus(str(service["status"]), None, details)


# --- interval ---


class AitemsUpdateTrigger(StatusTrigger):
    """
    Waits until an incremental update of an interval service's training is ``completed``, or
    fails (see :data:`~..protocol.aitems.UPDATE_STATUSES`). An update the history does not list
    yet is waited on.

    :param service_id: the interval service.
    :param train_type: ``personalRecommend``, ``relatedItem`` or ``pop``.
    :param train_version: the training version the update applies to.
    :param update_version: the update to wait for; ``None`` for the newest listed.
    """

    default_statuses = api.UPDATE_STATUSES
    job_noun = "AiTEMS update"

    def __init__(
        self, service_id: str, train_type: str, train_version: str, update_version: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.service_id = service_id
        self.train_type = train_type
        self.train_version = train_version
        self.update_version = update_version

    def job_ids(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "train_type": self.train_type,
            "train_version": self.train_version,
            "update_version": self.update_version,
        }

    def client(self) -> AbstractAsyncContextManager[AitemsAsyncClient]:
        return AitemsHook(aitems_conn_id=self.conn_id).async_client()

    def request(self) -> ApiRequest[list[dict[str, Any]]]:
        """The status check, described once for the async client and the sync hook alike."""
        return api.list_updates(self.service_id, self.train_type, self.train_version)

    async def fetch(self, client: AitemsAsyncClient) -> JobStatus:
        return self.observed(await client.call(self.request()))

    def fetch_sync(self, hook: AitemsHook) -> JobStatus:
        """The same status check through the sync hook (a sensor's or task's check before deferring)."""
        return self.observed(hook.call(self.request()))

    def observed(self, updates: list[dict[str, Any]]) -> JobStatus:
        """The update's status in a history; its version and row counts go into the event."""
        update = api.find_update(updates, self.update_version)
        if update is None:
            return JobStatus(api.UPDATE_NOT_LISTED)
        result = update.get("updateResult")
        counts = {k: v for k, v in result.items() if isinstance(v, int)} if isinstance(result, dict) else {}
        # Bounded: the counts NAVER documents, as integers; they go into the event and the XCom.
        details = {"update_version": update.get("updateVersion"), "update_result": dict(list(counts.items())[:10])}
        return JobStatus(str(update["status"]), None, details)


# --- recommendations ---
