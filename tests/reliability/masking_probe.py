"""
Positive controls of secret masking in a real Airflow (see ``test_airflow_cluster.py``).

A test that finds no secret in a log proves little unless the log is known to pass through
the masker. These log a secret on purpose — a presigned URL the hook masked, an API key the
async client masked with ``amask_secret`` — so the test can check that the real task-log and
triggerer-log paths print ``***`` in its place.

This module is importable only where ``PYTHONPATH`` holds this folder (the test cluster): the
triggerer loads a trigger by its class path, which a DAG file's module never has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_predone.operators.base import MIN_FIRST_POLL_DELAY


class MaskingProbeTrigger(BaseTrigger):
    """Obtains a train API key through the provider's async client, then logs it."""

    def __init__(self, conn_id: str = "predone_default") -> None:
        super().__init__()
        self.conn_id = conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {"conn_id": self.conn_id})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_predone.hooks.predone import PredictionOneHook
        from airflow_provider_predone.protocol.common import Credential

        async with PredictionOneHook(predone_conn_id=self.conn_id).async_client() as client:
            key = await client._api_key(Credential.TRAIN, None)
        self.log.info("masking probe (triggerer): the train API key is %s", key)
        # In the trigger table long enough for the test to read it; and, like the provider's
        # triggers, no event before the scheduler has taken in the deferring worker's exit, or
        # Airflow fails the task (docs/deferrable.md, "Short jobs and a real scheduler").
        await asyncio.sleep(MIN_FIRST_POLL_DELAY)
        yield TriggerEvent({"status": "success", "key_length": len(key)})
