"""The sensor base shared by every sensor of this provider."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseSensorOperator

from airflow_provider_predone import _event_loop
from airflow_provider_predone.exceptions import InvalidInputError, JobFailedError
from airflow_provider_predone.protocol.common import path_id
from airflow_provider_predone.waiting import (
    default_deferrable,
    first_poll_at,
    sensor_result,
    status_list,
    validate_event,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    from airflow_provider_predone.triggers.base import StatusTrigger


class JobSensor(BaseSensorOperator):
    """
    Base of this provider's sensors: classify a status, defer to the matching trigger.

    :param deferrable: after one poke, wait in the triggerer.
    :param poke_interval: seconds (or a timedelta) between status checks.
    :param timeout: how long to wait, seconds or a timedelta (default: Airflow's
        ``[sensors] default_timeout``).
    :param start_from_trigger: skip the worker entirely and start in the triggerer (ids must
        then be literals or, on Airflow 3.1+, templates the triggerer can render).
    :param end_from_trigger: end the task in the triggerer (success with this sensor's XCom,
        or failed with the reason in the task's log) instead of resuming it on a worker. With
        ``start_from_trigger`` the wait never takes a worker slot at all. Needs
        ``deferrable`` or ``start_from_trigger``; callbacks run as usual; a failed task gets its
        retries on Airflow 3.3, not on 3.0.6. Airflow refuses it while listeners (OpenLineage's)
        are registered, so the task then resumes on a worker as without it, with one warning.
    :param success_statuses: replaces the vendor's success statuses.
    :param failure_statuses: replaces the vendor's failure statuses.
    :param running_statuses: the statuses meaning "still running"; when given, any status
        outside the three sets fails at once.

    Poking and deferring check the status through the very same code (the trigger's
    :meth:`~..triggers.base.StatusTrigger.check`): one status call, one masking, one
    classification and one transient-error rule for every way of waiting.
    """

    #: names of the id attributes, passed to the trigger under the same names
    id_fields: tuple[str, ...] = ()
    #: how an id is checked before any status call, by name: ``check(value, name)`` returns the id
    #: to use (set on the sensor when it differs) or raises an InvalidInputError naming ``name``;
    #: an id not named here goes into a URL path as it is (:func:`~..protocol.common.path_id`)
    id_checks: ClassVar[Mapping[str, Callable[[Any, str], Any]]] = {}
    conn_field: str = ""

    def __init__(
        self,
        *,
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
        if timeout is not None:  # else Airflow's default (Airflow 3.0 refuses an explicit None)
            kwargs["timeout"] = timeout
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.success_statuses = status_list("success_statuses", success_statuses)
        self.failure_statuses = status_list("failure_statuses", failure_statuses)
        self.running_statuses = status_list("running_statuses", running_statuses)
        if self.poke_interval <= 0:
            raise InvalidInputError(f"poke_interval must be > 0 seconds, got {self.poke_interval!r}")
        if self.timeout <= 0:
            raise InvalidInputError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if end_from_trigger and not (self.deferrable or start_from_trigger):
            raise InvalidInputError(
                "end_from_trigger=True ends the wait in the triggerer, so it needs deferrable=True "
                f"or start_from_trigger=True ({self.task_id!r} waits on a worker)"
            )
        # Airflow refuses the whole DAG file at parse when a task has end_from_trigger=True and
        # listeners are registered (they would miss the task's end), so end on a worker then.
        #: the listeners that made this sensor end on a worker although end_from_trigger=True
        self.end_from_trigger_overridden_by = registered_listeners() if end_from_trigger else []
        self.end_from_trigger = end_from_trigger and not self.end_from_trigger_overridden_by
        if start_from_trigger:
            from airflow.triggers.base import StartTriggerArgs

            self.start_from_trigger = True
            trigger_cls = self.trigger_class()
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=f"{trigger_cls.__module__}.{trigger_cls.__qualname__}",  # Airflow wants its path
                trigger_kwargs={**self._trigger_kwargs(), "deadline": None, "timeout": float(self.timeout)},
                next_method="execute_complete",
                # Airflow's own limit, a backstop one poll after the trigger's own deadline.
                timeout=timedelta(seconds=float(self.timeout) + float(self.poke_interval) + 60),
            )

    if TYPE_CHECKING:
        # For the user's type checker only: BaseOperator says ``XComArg``, but what it returns
        # is a PlainXComArg, so ``sensor.output["model_id"]`` type-checks.
        @property
        def output(self) -> PlainXComArg: ...

    def _ids(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.id_fields}

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            **self._ids(),
            "conn_id": getattr(self, self.conn_field),
            "poll_interval": float(self.poke_interval),
            "success_statuses": self.success_statuses,
            "failure_statuses": self.failure_statuses,
            "running_statuses": self.running_statuses,
            "end_from_trigger": self.end_from_trigger,
        }

    def _check_ids(self) -> None:
        """Refuse ids that cannot name a job before any status call, naming the field."""
        for name, value in self._ids().items():
            check: Callable[[Any, str], Any] = self.id_checks.get(name, path_id)
            checked = check(value, name)
            if checked is not value:
                setattr(self, name, checked)

    @staticmethod
    def trigger_class() -> type[StatusTrigger]:
        """The trigger this sensor waits with, imported when needed (DAG parsing imports no HTTP client)."""
        raise NotImplementedError

    def _trigger(self, deadline: float) -> StatusTrigger:
        return self.trigger_class()(**self._trigger_kwargs(), deadline=deadline)

    def poke(self, context: Context) -> bool:
        # One trigger per task run: it remembers the statuses it has logged and warned about.
        if getattr(self, "_checker", None) is None:
            self._checker = self._trigger(time.time() + float(self.timeout))
        event = _event_loop.run(self._checker.check_once())
        if event is None:
            return False
        self._event = validate_event(dict(event.payload), *self.id_fields)
        return True

    def execute(self, context: Context) -> Any:
        self._check_ids()
        if not self.deferrable:
            super().execute(context)
            return self._result()
        if self.poke(context):
            return self._result()
        trigger = self._trigger(time.time() + float(self.timeout))
        trigger.first_poll_at = first_poll_at(float(self.poke_interval), self.log, "poke_interval")  # see there
        self.defer(trigger=trigger, method_name="execute_complete")

    def _result(self) -> dict[str, Any]:
        event = getattr(self, "_event", None) or {}
        return {**self._ids(), "status": "success", "job_status": event.get("job_status")}

    def execute_complete(self, context: Context, event: dict[str, Any] | str | None = None) -> Any:
        if self.end_from_trigger_overridden_by:  # once per task run: every wait in a trigger ends here
            self.log.warning(
                "%r ends on a worker, not in the triggerer: Airflow does not support end_from_trigger=True "
                "while listeners are registered (%s), as they would miss the task's end, and refuses such a DAG. "
                "Set end_from_trigger=False to keep the listeners without this warning, or remove them "
                "(OpenLineage: [openlineage] disabled = True) to end in the triggerer.",
                self.task_id,
                ", ".join(self.end_from_trigger_overridden_by),
            )
        if isinstance(event, str):  # dag.test() resumes even a task its trigger ended: the end state
            if event != "success":
                raise JobFailedError(f"The trigger ended {self.task_id!r} as {event!r}; its log says why")
            return self._result()  # the ids; the job status stayed in the triggerer
        event = validate_event(event, *self.id_fields)
        self.log.info("%s", event.get("message"))
        return sensor_result(event, self.id_fields)


def registered_listeners() -> list[str]:
    """
    Names of the Airflow listeners registered in this process (OpenLineage's, once configured).

    The Task SDK's listener manager fires on workers (Airflow 3.1+), the core one is the one a DAG
    parse checks; the first that has any answers. Loading them loads Airflow's plugins (about a
    second in a fresh process), so only a sensor with ``end_from_trigger=True`` asks.
    """
    for module in ("airflow.sdk.listener", "airflow.listeners.listener"):
        try:
            manager = importlib.import_module(module).get_listener_manager()
        except ImportError:  # no Task SDK listeners before Airflow 3.1; a worker may lack the core
            continue
        names = [getattr(listener, "__name__", type(listener).__name__) for listener in manager.pm.get_plugins()]
        if names:
            return sorted(names)
    return []
