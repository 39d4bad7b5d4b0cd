"""What every operator of this provider that waits for a remote job has in common."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from airflow.providers.common.compat.sdk import BaseOperator, XComArg

# the waiting policy moved to its own module; re-exported from its old home
from airflow_provider_predone.waiting import MIN_FIRST_POLL_DELAY as MIN_FIRST_POLL_DELAY
from airflow_provider_predone.waiting import POLL_INTERVAL as POLL_INTERVAL
from airflow_provider_predone.waiting import TIMEOUT as TIMEOUT
from airflow_provider_predone.waiting import default_deferrable as default_deferrable
from airflow_provider_predone.waiting import first_poll_at as first_poll_at
from airflow_provider_predone.waiting import positive_seconds as positive_seconds
from airflow_provider_predone.waiting import status_list as status_list
from airflow_provider_predone.waiting import validate_event

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    from airflow_provider_predone._task_state import TaskState
    from airflow_provider_predone.triggers.base import JobStatus, StatusTrigger

#: What an id parameter takes (it is a template field): the id, a Jinja template string such as
#: ``"{{ params.model_id }}"``, or an upstream task's XCom (``train.output["model_id"]``).
TemplatedId: TypeAlias = int | str | XComArg
#: What a job operator's ``finish`` returns: the task's result and the asset events to emit (URI, extra).
Finished: TypeAlias = tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]


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

    def finished(self, result: dict[str, Any]) -> dict[str, Any]:
        """The task's ``result``, returned (an operator may keep what its lineage needs)."""
        return result

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
    #: the ids a success event must carry
    event_ids: tuple[str, ...] = ()

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

    # --- the parts each job operator supplies ----------------------------------------------------

    def prepare(self, scratch: Path) -> Any:
        """
        Every check of the input that can fail, before anything is sent; what :meth:`start` needs.

        :param scratch: a temporary directory that lives until the job is started (e.g. for a
            transcoded copy of the data to upload).
        """
        return None

    def describe_job(self, job: dict[str, Any]) -> str:
        """The job of a record, for log lines ("retrain job 8f3c...")."""
        raise NotImplementedError

    def job_exists(self, job: dict[str, Any], prepared: Any) -> bool:
        """Whether the job an earlier try recorded was started, for this input (then it is re-attached)."""
        raise NotImplementedError

    def start(self, record: TaskState, prepared: Any, earlier: dict[str, Any] | None) -> dict[str, Any]:
        """
        Start the job and return its record. The job's id goes into ``record`` *before* the act
        that starts the job (see docs/exactly-once.md), so a retry after a crash finds it.

        :param earlier: what an earlier try recorded, when its job is not found.
        """
        raise NotImplementedError

    def started(self, job: dict[str, Any]) -> dict[str, Any]:
        """The task's result when it does not wait (``wait_for_completion=False``): the job's ids."""
        return task_result({**{key: job[key] for key in self.event_ids}, "status": "started"})

    def trigger(self, job: dict[str, Any]) -> StatusTrigger:
        """The trigger that waits for the job."""
        raise NotImplementedError

    def observe(self, trigger: StatusTrigger) -> JobStatus:
        """
        The trigger's job's status, read once through the sync hook (then judged by
        :meth:`~airflow_provider_predone.triggers.base.StatusTrigger.judge`).
        """
        raise NotImplementedError

    def finish(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Finished:
        """The task's result for the job's success ``event``, and the asset events to emit (URI, extra)."""
        raise NotImplementedError

    # --- the skeleton -------------------------------------------------------------------------------

    def record(self, context: Context) -> TaskState:
        """This task's retry record (:mod:`.._task_state`), named :attr:`task_state`."""
        from airflow_provider_predone._task_state import TaskState

        return TaskState(context, str(self.task_state))

    def execute(self, context: Context) -> Any:
        """Prepare, re-attach to the job an earlier try started or start it, then wait (or not) and finish."""
        self.check_waiting()
        with tempfile.TemporaryDirectory(prefix="predone-job-") as scratch:
            prepared = self.prepare(Path(scratch))
            record = self.record(context)
            earlier = record.get()
            if earlier and self.job_exists(earlier, prepared):
                self.log.info("Re-attaching to %s started by an earlier try", self.describe_job(earlier))
                job = earlier
            else:
                if earlier:
                    what = self.describe_job(earlier)
                    self.log.info("%s of an earlier try never started; starting afresh", what[:1].upper() + what[1:])
                job = self.start(record, prepared, earlier)
        if not self.wait_for_completion:
            return self.finished(self.started(job))
        return self.wait_for(context, self.trigger(job))

    def wait_for(self, context: Context, trigger: StatusTrigger, **resume_kwargs: Any) -> Any:
        """
        Wait for ``trigger``'s job, then resume in ``execute_complete``.

        Deferrable: the status is checked once here first (:meth:`check_now`), and a job that has
        ended already completes the task without deferring; else the trigger checks next after
        :func:`first_poll_at`.
        """
        if self.deferrable:
            ended = self.check_now(trigger)
            if ended is not None:
                return self.execute_complete(context, ended, **resume_kwargs)
            trigger.first_poll_at = first_poll_at(trigger.poll_interval, self.log)
            self.defer(trigger=trigger, method_name="execute_complete", kwargs=resume_kwargs or None)
        from airflow_provider_predone.triggers.base import run_inline

        return self.execute_complete(context, run_inline(trigger), **resume_kwargs)

    def check_now(self, trigger: StatusTrigger) -> dict[str, Any] | None:
        """
        The event of a job that has ended already, else ``None``: one sync status check (no event
        loop on the worker), judged by the trigger's own rules. A transient failure counts as
        "still running": the trigger checks again.
        """
        from airflow_provider_predone.exceptions import ApiError

        try:
            try:
                observed: JobStatus | ApiError = self.observe(trigger)
            except ApiError as exc:
                observed = exc
            ended = trigger.judge(observed)
        except ApiError as exc:
            self.log.warning("Status check failed (%s); the trigger checks again later", exc)
            return None
        return None if ended is None else dict(ended.payload)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """
        Finish the task with the trigger's ``event`` (a job that ended, or the deadline): the
        result on success, else the typed error the event stands for (see
        :func:`~..waiting.validate_event`). The retry record is deleted once the result is read.
        """
        from airflow_provider_predone import assets

        success = validate_event(event, *self.event_ids)
        result, asset_events = self.finish(context, success, **kwargs)
        self.record(context).clear()
        for uri, extra in asset_events:
            assets.emit(context, str(self.asset_alias), uri, extra)
        return self.finished(result)
