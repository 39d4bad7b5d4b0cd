"""
The polling loop shared by every status trigger of this provider, and the event contract
shared by every operator and sensor that resumes from one.

A trigger's kwargs are ids, a connection id, a poll interval and a deadline — never secrets —
so it can be serialised, cancelled and restarted on any triggerer and resume the same job.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_predone import _event_loop, exceptions
from airflow_provider_predone.exceptions import ApiError
from airflow_provider_predone.hooks._http import deadline_scope
from airflow_provider_predone.protocol.common import Phase, StatusSets

# the event contract moved to airflow_provider_predone.waiting; re-exported from its old home
from airflow_provider_predone.waiting import OUTCOMES as OUTCOMES
from airflow_provider_predone.waiting import sensor_result as sensor_result
from airflow_provider_predone.waiting import validate_event as validate_event

#: Longest pause between polls while the service keeps failing transiently.
MAX_ERROR_BACKOFF = 300.0


@dataclass(frozen=True)
class JobStatus:
    """One observation of a remote job: the vendor status plus what an event should carry."""

    status: str
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class StatusTrigger(BaseTrigger):
    """
    Polls one remote job until it succeeds, fails or the deadline passes.

    * one client (one HTTP session, the connection resolved once) for the whole run;
    * a status change is logged once, not every poll;
    * transient errors (after the hook's own retries) keep the trigger polling with backoff;
    * at the deadline the status is checked one final time before a ``timeout`` event;
    * an unknown status is waited on and logged once as a warning, or fails at once when
      ``running_statuses`` is given; every set can be replaced.

    :param conn_id: the Airflow connection.
    :param poll_interval: seconds between status checks.
    :param deadline: absolute deadline (Unix time). ``None`` means ``timeout`` seconds after
        this trigger starts (used when a task starts straight in the triggerer).
    :param timeout: seconds, used only when ``deadline`` is ``None``.
    :param success_statuses: replaces the vendor's success statuses.
    :param failure_statuses: replaces the vendor's failure statuses.
    :param running_statuses: replaces the known running statuses and makes every other status
        a failure.
    :param first_poll_at: no status check before this Unix time (``None``: check at once). Set
        by a task that defers, see :func:`~..operators.base.first_poll_at`.
    :param end_from_trigger: end the task here instead of resuming it on a worker (sensors
        only, see :meth:`task_end`).
    """

    #: the vendor's status classification, replaced per instance by the user's sets
    default_statuses: StatusSets
    #: what the job is called in log lines and messages, e.g. "training"
    job_noun: str = "job"

    def __init__(
        self,
        *,
        conn_id: str,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        timeout: float | None = None,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        first_poll_at: float | None = None,
        end_from_trigger: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0:
            raise exceptions.InvalidInputError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        if deadline is None and (timeout is None or timeout <= 0):
            raise exceptions.InvalidInputError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.timeout = timeout
        self.success_statuses = sorted(success_statuses) if success_statuses is not None else None
        self.failure_statuses = sorted(failure_statuses) if failure_statuses is not None else None
        self.running_statuses = sorted(running_statuses) if running_statuses is not None else None
        self.first_poll_at = first_poll_at
        self.end_from_trigger = end_from_trigger
        # What this run has seen, for logging each status change and each unknown status once.
        self._last_status: str | None = None
        self._last_details: dict[str, Any] = {}
        self._warned: set[str] = set()

    # --- what each trigger defines --------------------------------------------------------------

    @abstractmethod
    def job_ids(self) -> dict[str, Any]:
        """The ids identifying the job; they go into every event and the serialised kwargs."""

    @abstractmethod
    def client(self) -> AbstractAsyncContextManager[Any]:
        """An async client (one session) for the whole run."""

    @abstractmethod
    async def fetch(self, client: Any) -> JobStatus:
        """Check the job's status once."""

    # --- the loop ------------------------------------------------------------------------------

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.job_ids(),
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "timeout": self.timeout,
                "success_statuses": self.success_statuses,
                "failure_statuses": self.failure_statuses,
                "running_statuses": self.running_statuses,
                "first_poll_at": self.first_poll_at,
                "end_from_trigger": self.end_from_trigger,
            },
        )

    @property
    def statuses(self) -> StatusSets:
        return self.default_statuses.overridden(self.success_statuses, self.failure_statuses, self.running_statuses)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The event is yielded after the client is closed: a generator suspended inside an
        # ``async with`` cannot be closed cleanly by whoever stops iterating after one event.
        event = await self.poll()
        yield self.task_end(event) if self.end_from_trigger else event

    def task_end(self, event: TriggerEvent) -> TriggerEvent:
        """
        The event that ends a sensor's task in the triggerer, so it never takes a worker slot
        to resume: on success the sensor's result as its XCom, otherwise the message logged
        (the trigger's log is the task's log) and the task failed.
        """
        from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent

        payload = dict(event.payload)
        if payload["status"] == "success":
            self.log.info("%s", payload["message"])
            return TaskSuccessEvent(xcoms={"return_value": sensor_result(payload, self.job_ids())})
        self.log.error("%s", payload["message"])
        return TaskFailedEvent()

    async def poll(self) -> TriggerEvent:
        """Poll until the job ends or the deadline passes; the one event this trigger fires."""
        deadline = self.deadline if self.deadline is not None else time.time() + float(self.timeout or 0)
        # No retry inside a status check may wait past the deadline (a server's Retry-After included).
        with deadline_scope(deadline):
            return await self._poll_until(deadline)

    async def _poll_until(self, deadline: float) -> TriggerEvent:
        statuses = self.statuses
        failures = 0
        if self.first_poll_at is not None:  # absolute: a restarted trigger waits only the rest
            await asyncio.sleep(max(min(self.first_poll_at, deadline) - time.time(), 0.0))
        async with self.client() as client:
            while True:
                final = time.time() >= deadline
                try:
                    ended = await self.check(client, statuses)
                except ApiError as exc:  # transient: check() returns permanent errors as events
                    if final:
                        return self._event(
                            "timeout", self._last_status, f"deadline passed while the service kept failing: {exc}"
                        )
                    failures += 1
                    pause = min(self.poll_interval * 2 ** min(failures, 16), MAX_ERROR_BACKOFF)
                    self.log.warning("%s: status check failed (%s); next try in %.0f s", self._name(), exc, pause)
                    await asyncio.sleep(min(pause, max(deadline - time.time(), 0.0)))
                    continue
                failures = 0
                if ended is not None:
                    return ended
                if final:
                    message = f"{self._name()} was still {self._last_status!r} at the deadline"
                    return self._event("timeout", self._last_status, message, **self._last_details)
                await asyncio.sleep(min(self.poll_interval, max(deadline - time.time(), 0.0)))

    async def check(self, client: Any, statuses: StatusSets | None = None) -> TriggerEvent | None:
        """
        Check the job's status once: the event it ended with, or ``None`` while it runs.

        The one status check of this provider: the trigger loop, non-deferrable waits and the
        sensors' pokes all come here. A permanent API error is returned as an ``error`` event;
        a transient one is raised for the caller to retry.
        """
        try:
            observed: JobStatus | ApiError = await self.fetch(client)
        except ApiError as exc:
            observed = exc
        return self.judge(observed, statuses)

    def judge(self, observed: JobStatus | ApiError, statuses: StatusSets | None = None) -> TriggerEvent | None:
        """
        What one observation of the job means: the event it ended with, or ``None`` while it runs.

        Shared by :meth:`check` and a task's sync check before it defers, so both judge alike. A
        permanent API error is an ``error`` event; a transient one is raised for the caller to retry.
        """
        statuses = statuses or self.statuses
        if isinstance(observed, ApiError):
            if observed.transient:
                raise observed
            return self._event(
                "error", self._last_status, f"{self._name()}: {observed}", error_type=type(observed).__name__
            )
        if observed.status != self._last_status:
            self.log.info("%s is now %r", self._name(), observed.status)
        self._last_status, self._last_details = observed.status, observed.details
        phase = statuses.classify(observed.status, observed.message)
        if phase is Phase.SUCCESS:
            return self._event("success", observed.status, f"{self._name()} is {observed.status!r}", **observed.details)
        if phase is Phase.FAILURE:
            reason = f": {observed.message}" if observed.message else ""
            if observed.status not in statuses.failure and not observed.message:
                reason = f", which is in none of the status sets ({statuses.describe()})"
            message = f"{self._name()} ended with status {observed.status!r}{reason}"
            return self._event("failure", observed.status, message, **observed.details)
        if phase is Phase.UNKNOWN and observed.status not in self._warned:
            self._warned.add(observed.status)
            self.log.warning(
                "%s has the undocumented status %r: waiting on it as running. If it means the job "
                "ended, pass it in success_statuses or failure_statuses; to fail on any status not "
                "listed, pass running_statuses (%s)",
                self._name(),
                observed.status,
                statuses.describe(),
            )
        return None

    async def check_once(self) -> TriggerEvent | None:
        """:meth:`check` with its own client; a transient failure counts as "still running"."""
        async with self.client() as client:
            try:
                return await self.check(client)
            except ApiError as exc:
                self.log.warning("%s: status check failed (%s); checking again later", self._name(), exc)
                return None

    def _name(self) -> str:
        ids = ", ".join(f"{k}={v}" for k, v in self.job_ids().items())
        return f"{self.job_noun} ({ids})"

    def _event(self, outcome: str, job_status: str | None, message: str, **details: Any) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {"status": outcome, "job_status": job_status, "message": message, **self.job_ids(), **details}
        )


def run_inline(trigger: StatusTrigger) -> dict[str, Any]:
    """
    Run a trigger to its first event in this process (waiting on a worker, not deferred).

    Non-deferrable waits use the very same loop as the triggerer, so the two modes cannot
    drift apart.
    """

    event = _event_loop.run(trigger.poll())
    return dict(event.payload)
