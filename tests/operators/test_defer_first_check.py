"""
How a task defers (issue 16.1, docs/deferrable.md "Short jobs and a real scheduler"): the job's
status is checked once on the worker first, so a job that has already ended completes the task
without deferring; otherwise the trigger's first check is one poll interval away, and not sooner
than ``[predone] min_first_poll_delay`` seconds. The real-scheduler race itself is shown by
``tests/reliability/test_defer_race.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import DATA, wait_for

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.operators.base import MIN_FIRST_POLL_DELAY
from airflow_provider_predone.operators.predone import PredictionOneTrainOperator
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor
from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0
    from airflow.exceptions import TaskDeferred

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


class ResumedWith(PredictionOneTrainOperator):
    """``execute_complete`` hands back the event it was given (results are not fetched here)."""

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return event


def start_training(hook: PredictionOneHook) -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "first-check", CONFIG)
    return urls.external_process_id


def trigger(epid: str, poll_interval: float) -> PredictionOneTrainTrigger:
    return PredictionOneTrainTrigger(
        external_process_id=epid, conn_id="predone_default", poll_interval=poll_interval, deadline=time.time() + 60
    )


def operator(poll_interval: float) -> ResumedWith:
    return ResumedWith(
        task_id="train",
        train_data="unused.csv",
        model_name="m",
        config=CONFIG,
        deferrable=True,
        poll_interval=poll_interval,
    )


def test_a_job_that_already_ended_completes_on_the_worker_without_deferring(connections: EmulatorProcess) -> None:
    hook = PredictionOneHook()
    epid = start_training(hook)
    wait_for("the training to finish", lambda: hook.get_train_status(epid).status == "finished", timeout=30)
    event = operator(poll_interval=1).wait_for({}, trigger(epid, poll_interval=1))  # no TaskDeferred
    assert (event["status"], event["job_status"], event["external_process_id"]) == ("success", "finished", epid)


def test_a_running_job_defers_with_the_first_poll_one_interval_and_at_least_the_floor_away(
    connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections.configure(job_seconds=60)
    epid = start_training(PredictionOneHook())
    monkeypatch.delenv("AIRFLOW__PREDONE__MIN_FIRST_POLL_DELAY")  # the tests' 0: back to the default
    for poll_interval, delay in ((1, MIN_FIRST_POLL_DELAY), (30, 30)):
        before = time.time()
        with pytest.raises(TaskDeferred) as deferred:
            operator(poll_interval).wait_for({}, trigger(epid, poll_interval))
        assert delay <= deferred.value.trigger.first_poll_at - before < delay + 5
        assert deferred.value.trigger.serialize()[1]["first_poll_at"] == deferred.value.trigger.first_poll_at
    monkeypatch.setenv("AIRFLOW__PREDONE__MIN_FIRST_POLL_DELAY", "3")
    before = time.time()
    sensor = PredictionOneTrainSensor(
        task_id="wait", external_process_id=epid, deferrable=True, poke_interval=1, timeout=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # pokes once (running), then defers
    assert 3 <= deferred.value.trigger.first_poll_at - before < 8


def test_the_check_before_deferring_starts_no_event_loop_on_the_worker(
    connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's one check goes through the sync hook, judged by the trigger's own rules (issue 23, point 2)."""
    from airflow_provider_predone import _event_loop

    def no_event_loop(main: Any) -> Any:
        main.close()
        raise AssertionError("an event loop was started on the worker")

    connections.configure(job_seconds=60)
    hook = PredictionOneHook()
    running = start_training(hook)
    monkeypatch.setattr(_event_loop, "run", no_event_loop)
    with pytest.raises(TaskDeferred):
        operator(poll_interval=1).wait_for({}, trigger(running, poll_interval=1))
    connections.finish_jobs()
    wait_for("the training to finish", lambda: hook.get_train_status(running).status == "finished", timeout=30)
    event = operator(poll_interval=1).wait_for({}, trigger(running, poll_interval=1))  # no TaskDeferred
    assert (event["status"], event["job_status"], event["external_process_id"]) == ("success", "finished", running)
