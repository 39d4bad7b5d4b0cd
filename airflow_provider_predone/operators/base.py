"""What every operator of this provider that waits for a remote job has in common."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_predone.exceptions import InvalidInputError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_predone.triggers.base import StatusTrigger


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def positive_seconds(field: str, value: Any) -> float:
    """``value`` (seconds or a timedelta) as a positive float, or an error naming ``field``."""
    try:
        seconds = float(value.total_seconds() if isinstance(value, timedelta) else value)
    except (TypeError, ValueError, AttributeError):
        raise InvalidInputError(f"{field} must be a positive number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidInputError(f"{field} must be a positive number of seconds, got {value!r}")
    return seconds


def task_result(fields: dict[str, Any]) -> dict[str, Any]:
    """
    An operator's result with unknown (``None``) fields left out.

    Each field becomes its own XCom (``multiple_outputs``), and Airflow 3.0 refuses to store
    a ``None`` XCom; a field that is absent simply means "not known".
    """
    return {key: value for key, value in fields.items() if value is not None}


class JobOperator(BaseOperator):
    """
    Starts a remote job and waits for it: deferred to the triggerer, or on the worker with the
    very same trigger loop (so both modes behave alike).

    :param wait_for_completion: wait until the job ends (else return once it started).
    :param deferrable: wait in the triggerer instead of on a worker.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta; at the deadline the status is
        checked once more before the task fails with a timeout.

    The result is a small dict; each of its keys is also pushed as its own XCom
    (``multiple_outputs``), so ``train.output["model_id"]`` works downstream.
    """

    #: the asset alias this operator emits its asset events through (see :mod:`..assets`)
    asset_alias: str | None = None

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        timeout: float | timedelta = 24 * 3600.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        if self.asset_alias:
            from airflow_provider_predone.assets import alias_outlets

            kwargs["outlets"] = alias_outlets(kwargs.get("outlets"), self.asset_alias)
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout

    @property
    def conn_id(self) -> str:
        """The connection the trigger resolves."""
        raise NotImplementedError

    def check_waiting(self) -> tuple[float, float]:
        """Validated ``(poll_interval, timeout)`` — called before anything is started."""
        return positive_seconds("poll_interval", self.poll_interval), positive_seconds("timeout", self.timeout)

    def trigger_kwargs(self) -> dict[str, Any]:
        poll_interval, timeout = self.check_waiting()
        return {"conn_id": self.conn_id, "poll_interval": poll_interval, "deadline": time.time() + timeout}

    def wait_for(self, context: Context, trigger: StatusTrigger, **resume_kwargs: Any) -> Any:
        """Wait for ``trigger``'s job, then resume in ``execute_complete``."""
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete", kwargs=resume_kwargs or None)
        from airflow_provider_predone.triggers.base import run_inline

        return self.execute_complete(context, run_inline(trigger), **resume_kwargs)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError
