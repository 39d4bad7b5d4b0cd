"""Status triggers against the emulator: events, deadlines, restarts, faults, serialisation."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest
from helpers import DATA, EMULATOR_OPTIONS, predone_connection

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import JobFailedError, JobTimeoutError, NotFoundError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger
from airflow_provider_predone.triggers.base import StatusTrigger, validate_event
from airflow_provider_predone.triggers.predone import (
    PredictionOnePredictionApiTrigger,
    PredictionOneRetrainTrigger,
    PredictionOneTrainTrigger,
)

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def start_training(hook: PredictionOneHook, config: dict[str, str] = CONFIG) -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "trigger-test", config)
    return urls.external_process_id


def train_trigger(epid: str, **kwargs) -> PredictionOneTrainTrigger:
    options = {"conn_id": "predone_default", "poll_interval": 0.2, "deadline": time.time() + 30, **kwargs}
    return PredictionOneTrainTrigger(external_process_id=epid, **options)


async def first_event(trigger: StatusTrigger, limit: float = 30) -> dict:
    async with asyncio.timeout(limit):
        event = await trigger.run().__anext__()
    return event.payload


def roundtrip(trigger: StatusTrigger) -> StatusTrigger:
    """Serialise as the triggerer stores it (encrypted serde) and rebuild from the class path."""
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow < 3.2
        from airflow.serialization.serde import deserialize, serialize
    classpath, kwargs = trigger.serialize()
    restored = deserialize(json.loads(json.dumps(serialize(kwargs))))
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**restored)


@pytest.fixture
def hook(connections: EmulatorProcess) -> PredictionOneHook:
    return PredictionOneHook()


async def test_training_success_event(hook: PredictionOneHook) -> None:
    epid = start_training(hook)
    event = await first_event(train_trigger(epid))
    assert event["status"] == "success"
    assert event["job_status"] == "finished"
    assert event["external_process_id"] == epid
    assert validate_event(event, "external_process_id") is event


async def test_training_failure_event_carries_the_vendor_message(hook: PredictionOneHook) -> None:
    epid = start_training(hook, {**CONFIG, "tc": "no_such_column"})
    event = await first_event(train_trigger(epid))
    assert event["status"] == "failure"
    assert event["job_status"] == "failed"
    assert "no_such_column" in event["message"]
    with pytest.raises(JobFailedError, match="no_such_column"):
        validate_event(event)


async def test_deadline_gives_a_timeout_after_one_final_check(hook: PredictionOneHook, connections) -> None:
    connections.configure(job_seconds=60)
    epid = start_training(hook)
    started = time.monotonic()
    event = await first_event(train_trigger(epid, poll_interval=30, deadline=time.time() + 1.0))
    assert 0.9 < time.monotonic() - started < 5  # the long poll interval is cut at the deadline
    assert event["status"] == "timeout"
    assert event["job_status"] in ("waiting", "running")
    with pytest.raises(JobTimeoutError, match="at the deadline"):
        validate_event(event)


async def test_a_job_finishing_just_before_the_deadline_is_a_success(hook: PredictionOneHook, connections) -> None:
    connections.configure(job_seconds=1.0)
    epid = start_training(hook)
    # One poll now (running), the next one only at the deadline: it must see "finished".
    event = await first_event(train_trigger(epid, poll_interval=60, deadline=time.time() + 2.0))
    assert event["status"] == "success"


async def test_errors_that_retrying_cannot_fix_end_with_an_error_event(connections) -> None:
    event = await first_event(train_trigger("no-such-process"))
    assert event["status"] == "error"
    assert event["error_type"] == "NotFoundError"
    with pytest.raises(NotFoundError, match="Not found external process id"):
        validate_event(event)


async def test_restart_from_serialised_kwargs_resumes_the_same_job(hook: PredictionOneHook, connections) -> None:
    connections.configure(job_seconds=2.0)
    epid = start_training(hook)
    uploads = connections.state()["uploads"]
    first = asyncio.ensure_future(first_event(train_trigger(epid)))
    await asyncio.sleep(0.5)  # mid-poll: cancelled as a triggerer shutdown would
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    event = await first_event(roundtrip(train_trigger(epid)))
    assert event["status"] == "success"
    assert event["external_process_id"] == epid
    state = connections.state()
    assert state["uploads"] == uploads
    assert state["trainings_started"] == 1


async def test_no_status_check_before_first_poll_at_even_after_a_restart(hook: PredictionOneHook, connections) -> None:
    epid = start_training(hook)  # a 1 s job: ended long before the first poll
    first_poll = time.time() + 12.0
    asked = connections.state()["requests"]
    waiting = asyncio.ensure_future(first_event(train_trigger(epid, first_poll_at=first_poll)))
    await asyncio.sleep(10.0)
    waiting.cancel()  # a triggerer restart, before the first poll
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert connections.state()["requests"] == asked  # nothing asked while waiting
    # Rebuilt from its kwargs, it waits only the rest (about 2 s: the time is absolute), not the
    # whole 12 s again. The bound leaves 8 s of slack: a loaded CI machine once took 5.5 s to
    # return the event after the first poll was due.
    restarted = time.time()
    event = await first_event(roundtrip(train_trigger(epid, first_poll_at=first_poll)))
    assert time.time() >= first_poll
    assert time.time() - restarted < 10.0
    assert event["status"] == "success"
    assert connections.state()["requests"] > asked


def test_serialised_kwargs_hold_ids_and_never_secrets(hook: PredictionOneHook, connections) -> None:
    epid = start_training(hook)
    triggers = [
        train_trigger(epid, success_statuses=["finished", "done"]),
        PredictionOneRetrainTrigger(retrain_job_id="job1", model_id=3, conn_id="predone_default", timeout=60),
        PredictionOnePredictionApiTrigger(classifier_id="c1", conn_id="predone_default", deadline=1.0),
        AitemsTrainingTrigger(service_id="s1", versions={"pop": "v1"}, conn_id="aitems_default", deadline=1.0),
    ]
    secrets = connections.secrets()
    values = [secrets["secret_key"], secrets["aitems_secret_key"], *secrets["api_keys"], *secrets["url_signatures"]]
    for trigger in triggers:
        restored = roundtrip(trigger)
        assert restored.serialize() == trigger.serialize()
        text = json.dumps(trigger.serialize()) + repr(trigger)
        assert not [v for v in values if v in text]
    assert set(triggers[0].serialize()[1]) == {
        "external_process_id",
        "conn_id",
        "poll_interval",
        "deadline",
        "timeout",
        "success_statuses",
        "failure_statuses",
        "running_statuses",
        "first_poll_at",
        "end_from_trigger",
    }


async def test_end_from_trigger_ends_the_task_with_the_sensor_result_or_fails_it(
    hook: PredictionOneHook, capsys
) -> None:
    from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent
    from airflow.utils.state import TaskInstanceState

    finished, failed = start_training(hook), start_training(hook, {**CONFIG, "tc": "no_such_column"})
    ended = roundtrip(train_trigger(finished, end_from_trigger=True))  # as a triggerer builds it
    assert ended.end_from_trigger is True
    async with asyncio.timeout(30):
        success = await ended.run().__anext__()
        failure = await train_trigger(failed, end_from_trigger=True).run().__anext__()
    assert isinstance(success, TaskSuccessEvent)
    assert success.task_instance_state == TaskInstanceState.SUCCESS
    # The sensor's own result: what execute_complete would have returned on a worker.
    assert success.xcoms == {
        "return_value": {"external_process_id": finished, "status": "success", "job_status": "finished"}
    }
    assert isinstance(failure, TaskFailedEvent)
    assert failure.task_instance_state == TaskInstanceState.FAILED
    assert "no_such_column" in capsys.readouterr().out  # the reason, in the trigger's (the task's) log


async def test_a_trigger_masks_no_presigned_url(hook: PredictionOneHook, connections) -> None:
    """
    The result URL of a finished job is dropped on the async side, not registered with Airflow's
    masker: its cost grows with every secret it holds (quadratic), and a triggerer holds them
    for its lifetime; 300 finished jobs cost one 160 s of CPU before this (docs/scale.md).
    """
    try:
        from airflow.sdk._shared.secrets_masker import _secrets_masker
    except ImportError:  # Airflow < 3.2
        from airflow.sdk.execution_time.secrets_masker import _secrets_masker

    epids = [start_training(hook) for _ in range(3)]
    await first_event(train_trigger(epids[0]))  # the train API key: masked once, as before
    masked = len(_secrets_masker().patterns)
    for epid in epids:
        assert (await first_event(train_trigger(epid)))["status"] == "success"
    assert len(_secrets_masker().patterns) == masked
    signatures = connections.secrets()["url_signatures"]
    assert len(signatures) >= 3  # each finished status handed out a presigned URL


async def test_user_status_sets_replace_the_defaults(hook: PredictionOneHook) -> None:
    epid = start_training(hook)
    # Treat the first in-progress status as a failure: the user's set wins.
    event = await first_event(train_trigger(epid, failure_statuses=["waiting", "running", "failed"]))
    assert event["status"] == "failure"


async def test_status_changes_are_logged_once(hook: PredictionOneHook, capsys) -> None:
    epid = start_training(hook)
    capsys.readouterr()
    event = await first_event(train_trigger(epid, poll_interval=0.05))  # ~20 polls
    assert event["status"] == "success"
    # Airflow's structlog set-up writes log lines to stdout.
    changes = [line.split("] ", 1)[1] for line in capsys.readouterr().out.splitlines() if " is now " in line]
    assert len(changes) == len(set(changes)) >= 2, changes  # waiting/running/finished: one line each


async def test_transient_faults_do_not_fail_the_trigger(monkeypatch) -> None:
    with EmulatorProcess(
        test_controls=True, fault_rate=0.4, fault_seed=3, slow_seconds=1.0, **EMULATOR_OPTIONS
    ) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PREDONE_DEFAULT",
            predone_connection(emulator.url, timeout=0.5, max_retries=1, retry_wait_seconds=0.01),
        )
        API_KEYS.clear()
        emulator.configure(fault_rate=0.0)
        epid = start_training(PredictionOneHook())
        emulator.configure(fault_rate=0.4, fault_seed=3)
        event = await first_event(train_trigger(epid, poll_interval=0.1), limit=60)
        faults = emulator.state()["faults"]
    assert event["status"] == "success"
    assert sum(faults.values()) > 0


async def test_retrain_and_prediction_api_triggers(hook: PredictionOneHook, connections) -> None:
    epid = start_training(hook)
    assert (await first_event(train_trigger(epid)))["status"] == "success"
    model_id = hook.find_model_id("trigger-test")
    created = hook.create_prediction_api(model_id)
    api_event = await first_event(
        PredictionOnePredictionApiTrigger(
            classifier_id=created.classifier_id, conn_id="predone_default", poll_interval=0.1, timeout=30
        )
    )
    assert api_event["status"] == "success"
    assert api_event["model_id"] == model_id
    upload = hook.get_retrain_upload_url(model_id, "new.csv")
    hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "new_month.csv"))
    retrain_event = await first_event(
        PredictionOneRetrainTrigger(
            retrain_job_id=upload.retrain_job_id,
            model_id=model_id,
            conn_id="predone_default",
            poll_interval=0.1,
            timeout=30,
        )
    )
    assert retrain_event["status"] == "success"
    assert validate_event(retrain_event, "retrain_job_id", "model_id")["model_id"] == model_id


async def test_aitems_trigger_fails_with_the_type_and_status(connections) -> None:
    hook = AitemsHook()
    service_id = hook.create_service("trigger_shop")["serviceId"]
    versions = hook.request_training(
        service_id, ["pop", "relatedItem"], description="[emulator-fail:learningFailed:pop]"
    )
    trigger = AitemsTrainingTrigger(
        service_id=service_id, versions=versions, conn_id="aitems_default", poll_interval=0.1, timeout=30
    )
    event = await first_event(trigger)
    assert event["status"] == "failure"
    assert "'pop'" in event["message"]
    assert "learningFailed" in event["message"]
    ok = hook.request_training(service_id, ["relatedItem"])
    event = await first_event(
        AitemsTrainingTrigger(
            service_id=service_id, versions=ok, conn_id="aitems_default", poll_interval=0.1, timeout=30
        )
    )
    assert event["status"] == "success"
    assert event["statuses"] == {"relatedItem": "completed"}


def test_bad_poll_interval_and_timeout_are_refused() -> None:
    from airflow_provider_predone.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="poll_interval must be > 0"):
        PredictionOneTrainTrigger(external_process_id="p", conn_id="c", poll_interval=0, timeout=10)
    with pytest.raises(InvalidInputError, match="timeout must be > 0"):
        PredictionOneTrainTrigger(external_process_id="p", conn_id="c", timeout=-1)


@pytest.mark.parametrize("event", [None, {}, {"status": "maybe"}, "success", {"status": "success"}])
def test_invalid_events_are_rejected(event) -> None:
    from airflow_provider_predone.exceptions import ApiError

    with pytest.raises(ApiError):
        validate_event(event, "external_process_id")
