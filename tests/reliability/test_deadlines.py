"""
Deadlines: a job that never finishes ends with a timeout at the deadline, after exactly one
final status check; a job that finishes just before the deadline is a success; a service that
fails at the deadline gives a timeout, not a hang.

The status checks are counted by the emulator (``requests`` in ``/_emulator/state``), so "one
final check" is observed on the server, not inferred from the client's code. The poll interval
is far longer than the deadline: the only checks are the first one and the final one.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import DATA, predone_connection

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import JobTimeoutError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.operators.predone import PredictionOneTrainOperator
from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger
from airflow_provider_predone.triggers.base import StatusTrigger, validate_event
from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
DEADLINE = 1.5
LONG_POLL = 600.0  # never reached: the wait is cut at the deadline


def start_training(hook: PredictionOneHook) -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "deadlines", CONFIG)
    return urls.external_process_id


async def timed_event(trigger: StatusTrigger) -> tuple[dict, float]:
    started = time.monotonic()
    async with asyncio.timeout(60):
        event = await trigger.run().__anext__()
    return event.payload, time.monotonic() - started


def requests_seen(emulator: EmulatorProcess) -> int:
    return int(emulator.state()["requests"])


async def test_a_job_that_never_finishes_times_out_at_the_deadline_after_one_final_check(
    connections: EmulatorProcess,
) -> None:
    connections.configure(job_seconds=3600)
    epid = start_training(PredictionOneHook())  # the train API key is cached: checks are one request each
    before = requests_seen(connections)
    trigger = PredictionOneTrainTrigger(
        external_process_id=epid, conn_id="predone_default", poll_interval=LONG_POLL, deadline=time.time() + DEADLINE
    )
    event, elapsed = await timed_event(trigger)
    assert event["status"] == "timeout", event
    assert event["job_status"] in ("waiting", "running")
    assert DEADLINE <= elapsed < DEADLINE + 3
    assert requests_seen(connections) - before == 2  # the first check and the final one at the deadline
    with pytest.raises(JobTimeoutError, match="at the deadline"):
        validate_event(event, "external_process_id")


async def test_aitems_trainings_that_never_finish_time_out_after_one_final_check(connections: EmulatorProcess) -> None:
    connections.configure(job_seconds=3600)
    hook = AitemsHook()
    service_id = hook.create_service("deadline_shop")["serviceId"]
    versions = hook.request_training(service_id, ["personalRecommend", "relatedItem", "pop"])
    before = requests_seen(connections)
    trigger = AitemsTrainingTrigger(
        service_id=service_id,
        versions=versions,
        conn_id="aitems_default",
        poll_interval=LONG_POLL,
        deadline=time.time() + DEADLINE,
    )
    event, elapsed = await timed_event(trigger)
    assert event["status"] == "timeout", event
    assert DEADLINE <= elapsed < DEADLINE + 3
    assert requests_seen(connections) - before == 2 * 3  # two checks of three trainings each


async def test_a_job_finishing_just_before_the_deadline_is_a_success(connections: EmulatorProcess) -> None:
    connections.configure(job_seconds=1.0)
    epid = start_training(PredictionOneHook())
    before = requests_seen(connections)
    trigger = PredictionOneTrainTrigger(
        external_process_id=epid, conn_id="predone_default", poll_interval=LONG_POLL, deadline=time.time() + DEADLINE
    )
    event, elapsed = await timed_event(trigger)
    # The first check saw it running; only the final check, at the deadline, saw it finished.
    assert event["status"] == "success", event
    assert event["job_status"] == "finished"
    assert DEADLINE <= elapsed < DEADLINE + 3
    assert requests_seen(connections) - before == 2


async def test_a_service_failing_at_the_deadline_gives_a_timeout_not_a_hang(
    connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short request timeout, so that a "slow" fault (1 s) fails the attempt too.
    fast = {"timeout": 0.5, "retry_wait_seconds": 0.05, "retry_max_wait_seconds": 0.5}
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(connections.url, **fast))
    connections.configure(job_seconds=3600)
    epid = start_training(PredictionOneHook())
    before = requests_seen(connections)
    trigger = PredictionOneTrainTrigger(
        external_process_id=epid, conn_id="predone_default", poll_interval=LONG_POLL, deadline=time.time() + DEADLINE
    )
    running = asyncio.ensure_future(timed_event(trigger))
    while await asyncio.to_thread(requests_seen, connections) == before:  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.02)  # until the first check went through
    await asyncio.sleep(0.2)
    # From now on every request fails transiently.
    await asyncio.to_thread(connections.configure, fault_rate=1.0, slow_seconds=1.0)
    event, elapsed = await running
    assert event["status"] == "timeout", event
    assert "kept failing" in event["message"]
    # No retry waits past the deadline (a Retry-After or a backoff included): the final check is
    # one attempt, and the event comes as soon as it failed.
    assert DEADLINE <= elapsed < DEADLINE + 3
    # The first check, then the final check's one attempt (aiohttp itself re-sends an idempotent
    # request once when a kept-alive connection drops, hence up to one more).
    assert 2 <= requests_seen(connections) - before <= 3


def test_a_waiting_operator_fails_with_a_timeout_error_at_its_deadline(connections: EmulatorProcess) -> None:
    """The same loop on a worker (``deferrable=False``): the task fails with ``JobTimeoutError``."""
    connections.configure(job_seconds=3600)
    epid = start_training(PredictionOneHook())
    operator = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "train.csv"),
        model_name="deadlines",
        config=CONFIG,
        deferrable=False,
        poll_interval=LONG_POLL,
        timeout=DEADLINE,
    )
    trigger = PredictionOneTrainTrigger(external_process_id=epid, **operator.trigger_kwargs())
    before = requests_seen(connections)
    started = time.monotonic()
    with pytest.raises(JobTimeoutError, match=f"training \\(external_process_id={epid}\\) was still"):
        operator.wait_for({}, trigger)  # type: ignore[arg-type]
    assert DEADLINE - 0.1 <= time.monotonic() - started < DEADLINE + 3
    assert requests_seen(connections) - before == 2
