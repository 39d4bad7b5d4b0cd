"""What every operator of this provider that waits for a remote job has in common."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from airflow.providers.common.compat.sdk import BaseOperator, XComArg

from airflow_provider_predone import _event_loop

# the waiting policy moved to its own module; re-exported from its old home
from airflow_provider_predone.waiting import MIN_FIRST_POLL_DELAY as MIN_FIRST_POLL_DELAY
from airflow_provider_predone.waiting import POLL_INTERVAL as POLL_INTERVAL
from airflow_provider_predone.waiting import TIMEOUT as TIMEOUT
from airflow_provider_predone.waiting import default_deferrable as default_deferrable
from airflow_provider_predone.waiting import first_poll_at as first_poll_at
from airflow_provider_predone.waiting import positive_seconds as positive_seconds
from airflow_provider_predone.waiting import status_list as status_list

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    from airflow_provider_predone.triggers.base import StatusTrigger

#: What an id parameter takes (it is a template field): the id, a Jinja template string such as
#: ``"{{ params.model_id }}"``, or an upstream task's XCom (``train.output["model_id"]``).
TemplatedId: TypeAlias = int | str | XComArg


def task_result(fields: dict[str, Any]) -> dict[str, Any]:
    """
    An operator's result with unknown (``None``) fields left out.

    Each field becomes its own XCom (``multiple_outputs``), and Airflow 3.0 refuses to store
    a ``None`` XCom; a field that is absent simply means "not known".
    """
    return {key: value for key, value in fields.items() if value is not None}


class ProviderOperator(BaseOperator):
    """
    Every operator of this provider: a small dict result whose keys are also pushed as their
    own XComs (``multiple_outputs``), so ``train.output["model_id"]`` works downstream, and
    the asset alias the operator emits its events through.

    Operators that do not wait take no waiting parameters: Airflow then refuses
    ``deferrable=``, ``poll_interval=`` or ``timeout=`` at DAG parse, naming the parameter.
    """

    #: the asset alias this operator emits its asset events through (see :mod:`..assets`)
    asset_alias: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        if self.asset_alias:
            from airflow_provider_predone.assets import alias_outlets

            kwargs["outlets"] = alias_outlets(kwargs.get("outlets"), self.asset_alias)
        super().__init__(**kwargs)

    if TYPE_CHECKING:
        # For the user's type checker only: BaseOperator says ``XComArg``, but what it returns
        # is a PlainXComArg, so ``train.output["model_id"]`` type-checks.
        @property
        def output(self) -> PlainXComArg: ...


class JobOperator(ProviderOperator):
    """
    Starts a remote job and waits for it: deferred to the triggerer, or on the worker with the
    very same trigger loop (so both modes behave alike).

    :param wait_for_completion: wait until the job ends (else return once it started).
    :param deferrable: wait in the triggerer instead of on a worker.
    :param poll_interval: seconds between status checks.
    :param timeout: how long to wait, seconds or a timedelta; at the deadline the status is
        checked once more before the task fails with a timeout.
    :param success_statuses: replace the statuses that mean the job succeeded.
    :param failure_statuses: replace the statuses that mean the job failed.
    :param running_statuses: the statuses that mean "still running"; when given, any status
        outside the three sets fails the task at once instead of being waited on.
    """

    #: the name of this operator's retry record (:mod:`.._task_state`), deleted on final failure too
    task_state: str | None = None

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = POLL_INTERVAL,
        timeout: float | timedelta = TIMEOUT,
        success_statuses: Iterable[str] | None = None,
        failure_statuses: Iterable[str] | None = None,
        running_statuses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.task_state:
            from airflow_provider_predone._task_state import clear_on_failure

            kwargs["on_failure_callback"] = clear_on_failure(kwargs.get("on_failure_callback"), self.task_state)
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.success_statuses = status_list("success_statuses", success_statuses)
        self.failure_statuses = status_list("failure_statuses", failure_statuses)
        self.running_statuses = status_list("running_statuses", running_statuses)

    @property
    def conn_id(self) -> str:
        """The connection the trigger resolves."""
        raise NotImplementedError

    def check_waiting(self) -> tuple[float, float]:
        """Validated ``(poll_interval, timeout)`` — called before anything is started."""
        return positive_seconds("poll_interval", self.poll_interval), positive_seconds("timeout", self.timeout)

    def trigger_kwargs(self) -> dict[str, Any]:
        """The waiting part of this operator's trigger kwargs (connection, interval, deadline, statuses)."""
        poll_interval, timeout = self.check_waiting()
        return {
            "conn_id": self.conn_id,
            "poll_interval": poll_interval,
            "deadline": time.time() + timeout,
            "success_statuses": self.success_statuses,
            "failure_statuses": self.failure_statuses,
            "running_statuses": self.running_statuses,
        }

    def wait_for(self, context: Context, trigger: StatusTrigger, **resume_kwargs: Any) -> Any:
        """
        Wait for ``trigger``'s job, then resume in ``execute_complete``.

        Deferrable: the status is checked once here first, and a job that has ended already
        completes the task without deferring; else the trigger checks next after
        :func:`first_poll_at`.
        """
        if self.deferrable:
            ended = _event_loop.run(trigger.check_once())
            if ended is not None:
                return self.execute_complete(context, dict(ended.payload), **resume_kwargs)
            trigger.first_poll_at = first_poll_at(trigger.poll_interval, self.log)
            self.defer(trigger=trigger, method_name="execute_complete", kwargs=resume_kwargs or None)
        from airflow_provider_predone.triggers.base import run_inline

        return self.execute_complete(context, run_inline(trigger), **resume_kwargs)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """
        Finish the task with the trigger's ``event`` (a job that ended, or the deadline): the
        result on success, else the typed error the event stands for (see
        :func:`~..waiting.validate_event`).
        """
        raise NotImplementedError
