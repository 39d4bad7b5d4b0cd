"""Trigger that waits for AiTEMS trainings."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from airflow_provider_predone.hooks.aitems import AitemsAsyncClient, AitemsHook
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import Phase
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


# --- services ---


# --- interval ---


# --- recommendations ---
