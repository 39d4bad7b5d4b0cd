"""
A small record that survives task retries, for exactly-once remote jobs.

An operator writes the remote job's id here *before* the act that starts the job (an upload
starts retraining), so that a retried task finds it and re-attaches instead of starting a
second job. Airflow clears a task's XComs when it is retried, so XCom cannot hold it.

Airflow 3.3+ has ``task_state_store`` for exactly this. Older 3.x releases get an Airflow
Variable named after the task instance, deleted once the task succeeds or fails for good
(:func:`clear_on_failure`: a retry still finds it). (Airflow's own
``ResumableJobMixin`` stores the id only *after* submitting, which leaves the window this
provider must close, and does nothing before 3.3.)
"""

from __future__ import annotations

import json
from typing import Any

_KEY_PREFIX = "airflow_provider_predone"


class TaskState:
    """
    The retry-surviving record of one task instance, under ``name``.

    :param context: the task's context.
    :param name: what is recorded (one operator may keep several records).
    """

    def __init__(self, context: Any, name: str) -> None:
        self._store = context.get("task_state_store")
        self._name = name
        ti = context["ti"]
        self._variable = f"{_KEY_PREFIX}::{ti.dag_id}::{ti.run_id}::{ti.task_id}::{ti.map_index}::{name}"

    def get(self) -> dict[str, Any] | None:
        if self._store is not None:
            value = self._store.get(self._name)
        else:
            from airflow.providers.common.compat.sdk import Variable

            raw = Variable.get(self._variable, default=None)
            value = json.loads(raw) if raw else None
        return value if isinstance(value, dict) and value else None

    def set(self, value: dict[str, Any]) -> None:
        if self._store is not None:
            self._store.set(self._name, value)
            return
        from airflow.providers.common.compat.sdk import Variable

        Variable.set(self._variable, json.dumps(value), description="airflow-provider-predone retry record")

    def clear(self) -> None:
        if self._store is not None:
            self._store.delete(self._name)
            return
        from airflow.providers.common.compat.sdk import Variable

        try:
            Variable.delete(self._variable)
        except Exception:  # absent already: nothing to clear
            return


class _ClearRecord:
    """An ``on_failure_callback`` (final failures only: a retry runs ``on_retry_callback``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, context: Any) -> None:
        TaskState(context, self.name).clear()

    def __repr__(self) -> str:
        return f"clear retry record {self.name!r}"


def clear_on_failure(callbacks: Any, name: str) -> list[Any]:
    """The user's ``on_failure_callback`` (one or a list) plus one that deletes the record ``name``."""
    existing = list(callbacks) if isinstance(callbacks, list | tuple) else ([callbacks] if callbacks else [])
    if not any(isinstance(c, _ClearRecord) and c.name == name for c in existing):
        existing.append(_ClearRecord(name))
    return existing
