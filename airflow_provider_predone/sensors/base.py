"""The sensor base shared by every sensor of this provider."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator

from airflow_provider_predone.exceptions import InvalidInputError, JobFailedError
from airflow_provider_predone.operators.base import default_deferrable
from airflow_provider_predone.protocol.common import Phase, StatusSets

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class JobSensor(BaseSensorOperator):
    """
    Base of this provider's sensors: classify a status, defer to the matching trigger.

    :param deferrable: after one poke, wait in the triggerer.
    :param start_from_trigger: skip the worker entirely and start in the triggerer (ids must
        then be literals or, on Airflow 3.1+, templates the triggerer can render).
    :param success_statuses: replaces the vendor's success statuses.
    :param failure_statuses: replaces the vendor's failure statuses.
    """

    #: the trigger's import path
    trigger_path: str = ""
    default_statuses: StatusSets
    #: names of the id attributes, passed to the trigger under the same names
    id_fields: tuple[str, ...] = ()
    conn_field: str = ""

    def __init__(
        self,
        *,
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.success_statuses = list(success_statuses) if success_statuses is not None else None
        self.failure_statuses = list(failure_statuses) if failure_statuses is not None else None
        if self.poke_interval <= 0:
            raise InvalidInputError(f"poke_interval must be > 0 seconds, got {self.poke_interval!r}")
        if self.timeout <= 0:
            raise InvalidInputError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if start_from_trigger:
            from airflow.triggers.base import StartTriggerArgs

            self.start_from_trigger = True
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=self.trigger_path,
                trigger_kwargs={**self._trigger_kwargs(), "deadline": None, "timeout": float(self.timeout)},
                next_method="execute_complete",
                # Airflow's own limit, a backstop one poll after the trigger's own deadline.
                timeout=timedelta(seconds=float(self.timeout) + float(self.poke_interval) + 60),
            )

    @property
    def statuses(self) -> StatusSets:
        return self.default_statuses.overridden(self.success_statuses, self.failure_statuses)

    def _ids(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.id_fields}

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            **self._ids(),
            "conn_id": getattr(self, self.conn_field),
            "poll_interval": float(self.poke_interval),
            "success_statuses": self.success_statuses,
            "failure_statuses": self.failure_statuses,
        }

    def current_status(self) -> tuple[str, str | None]:
        """The job's status and the vendor's message, checked once."""
        raise NotImplementedError

    def poke(self, context: Context) -> bool:
        status, message = self.current_status()
        self._last_status = status
        phase = self.statuses.classify(status)
        self.log.info("%s: status %r", self.task_id, status)
        if phase is Phase.FAILURE:
            raise JobFailedError(f"{self._ids()} ended with status {status!r}{f': {message}' if message else ''}")
        return phase is Phase.SUCCESS

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            super().execute(context)
            return self._result()
        if self.poke(context):
            return self._result()
        module, _, name = self.trigger_path.rpartition(".")
        trigger_cls = getattr(importlib.import_module(module), name)
        trigger = trigger_cls(**self._trigger_kwargs(), deadline=time.time() + float(self.timeout))
        self.defer(trigger=trigger, method_name="execute_complete")

    def _result(self) -> dict[str, Any]:
        return {**self._ids(), "status": "success", "job_status": getattr(self, "_last_status", None)}

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        from airflow_provider_predone.triggers.base import validate_event

        event = validate_event(event, *self.id_fields)
        self.log.info("%s", event.get("message"))
        return {
            **{k: event[k] for k in self.id_fields},
            "status": event["status"],
            "job_status": event.get("job_status"),
        }
