"""
The waiting policy and the trigger-event rules every operator, sensor and trigger shares.

Cheap to import at DAG parse: it needs Airflow's configuration and this provider's
exceptions only, no HTTP client and no trigger machinery.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_predone import exceptions
from airflow_provider_predone.exceptions import InvalidInputError

# --- the waiting policy ------------------------------------------------------------------------


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


#: the waiting defaults of a job operator (seconds between status checks, seconds to wait)
POLL_INTERVAL = 30.0
TIMEOUT = 24 * 3600.0

#: default of ``[predone] min_first_poll_delay``, seconds (see :func:`first_poll_at`)
MIN_FIRST_POLL_DELAY = 10.0


def first_poll_at(poll_interval: float, log: Any = None, field: str = "poll_interval") -> float:
    """
    When the trigger of a task deferring now checks first: one poll interval after the task's
    own check, and not before ``[predone] min_first_poll_delay`` seconds (default 10).

    :param poll_interval: the task's seconds between status checks.
    :param log: the task's logger: when given, when the first check comes, and why, is logged
        (once per deferral), since a short ``poll_interval`` alone does not say it.
    :param field: the name of ``poll_interval`` on the task, for that line.

    Why the floor: a deferring task's worker exits and the executor reports that exit as
    ``success``. If the trigger fires and the scheduler queues the same try again before it has
    processed that report, Airflow 3 takes the report for a task killed externally and fails
    the task (apache/airflow#66374, #67287, #72716; docs/deferrable.md). Airflow 3.0's own
    executor gave that report 10 s (``RunningRetryAttemptType``) before requeueing the task.
    """
    floor = float(conf.getfloat("predone", "min_first_poll_delay", fallback=MIN_FIRST_POLL_DELAY))
    delay = max(poll_interval, floor)
    at = time.time() + delay
    if log is not None:
        clock = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")
        if floor > poll_interval:
            log.info(
                "Deferring: the first status check comes in %g s (at %s), not %s=%g s: [predone] "
                "min_first_poll_delay is %g s, so that the task cannot resume before the executor has "
                "reported its deferral (see docs/deferrable.md); later checks come every %g s",
                delay,
                clock,
                field,
                poll_interval,
                floor,
                poll_interval,
            )
        else:
            log.info(
                "Deferring: the first status check comes in %g s (at %s), one %s after this check", delay, clock, field
            )
    return at


def positive_seconds(field: str, value: Any) -> float:
    """``value`` (seconds or a timedelta) as a positive float, or an error naming ``field``."""
    try:
        seconds = float(value.total_seconds() if isinstance(value, timedelta) else value)
    except (TypeError, ValueError, AttributeError):
        raise InvalidInputError(f"{field} must be a positive number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidInputError(f"{field} must be a positive number of seconds, got {value!r}")
    return seconds


def status_list(field: str, statuses: Iterable[str] | None) -> list[str] | None:
    """A user's status set as a sorted list (it travels in trigger kwargs), or an error naming ``field``."""
    if statuses is None:
        return None
    try:
        items = None if isinstance(statuses, str | bytes) else list(statuses)
    except TypeError:  # not iterable
        items = None
    if items is None or not all(isinstance(s, str) and s for s in items):
        raise InvalidInputError(f"{field} must be a list of status strings, got {statuses!r}")
    return sorted(set(items))


# --- the event contract ------------------------------------------------------------------------

OUTCOMES = ("success", "failure", "timeout", "error")


def validate_event(event: dict[str, Any] | None, *required: str) -> dict[str, Any]:
    """
    Check an event a task resumed with and raise the typed error it stands for.

    Shared by every operator and sensor ``execute_complete``, so a missing, malformed or
    unsuccessful event is rejected the same way everywhere.

    :param required: keys a success event must carry (the job's ids).
    :return: the event, when it reports success.
    """
    if not isinstance(event, dict) or event.get("status") not in OUTCOMES:
        raise exceptions.ApiError(f"Resumed with an invalid trigger event: {event!r}")
    outcome, message = event["status"], str(event.get("message") or "")
    if outcome == "failure":
        raise exceptions.JobFailedError(message)
    if outcome == "timeout":
        raise exceptions.JobTimeoutError(message)
    if outcome == "error":
        error_cls = getattr(exceptions, str(event.get("error_type")), None)
        if not (isinstance(error_cls, type) and issubclass(error_cls, exceptions.ApiError)):
            error_cls = exceptions.ApiError
        raise error_cls(message)
    missing = [key for key in required if event.get(key) in (None, "")]
    if missing:
        raise exceptions.ApiError(f"Resumed with a success event lacking {missing}: {event!r}")
    return event


def sensor_result(event: dict[str, Any], id_fields: Iterable[str]) -> dict[str, Any]:
    """What a sensor returns (its XCom) for a success event: the job's ids and its status."""
    return {**{key: event[key] for key in id_fields}, "status": event["status"], "job_status": event.get("job_status")}
