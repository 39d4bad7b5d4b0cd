"""
A trigger cancelled in the middle of a status check and rebuilt from its stored kwargs — as
a triggerer restart or a move to another triggerer does — resumes the same job and finishes;
nothing is uploaded or started again. Every trigger class of the provider, rebuilt through
the path the triggerer takes: ``Trigger.encrypt_kwargs`` (what is stored in the ``trigger``
table), ``Trigger._decrypt_kwargs`` plus the triggerer's kwargs clean-up, then the class
imported from its class path and called with those kwargs.

"Mid-poll" is literal here: the emulator holds the status check's answer (a ``slow`` fault)
and the trigger is cancelled while it waits for it. The real triggerer process is killed
and restarted in ``test_airflow_cluster.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import DATA

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.emulator.faults import FaultInjector
from airflow_provider_predone.hooks import _http
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger
from airflow_provider_predone.triggers.base import StatusTrigger, validate_event
from airflow_provider_predone.triggers.predone import (
    PredictionOnePredictionApiTrigger,
    PredictionOneRetrainTrigger,
    PredictionOneTrainTrigger,
)

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
WORK_COUNTERS = ("uploads", "trainings_started", "retrain_jobs_started", "classifiers", "aitems_trainings_started")
SLOW_SEED = next(seed for seed in range(10_000) if FaultInjector(seed).draw(1.0) == "slow")


def as_the_triggerer_rebuilds(trigger: StatusTrigger) -> StatusTrigger:
    """Store ``trigger`` as Airflow does when a task defers, and load it as a triggerer does."""
    from airflow.models.trigger import Trigger

    try:  # the triggerer's own import_string (Airflow 3.2+ moved it)
        from airflow._shared.module_loading import import_string
    except ImportError:
        from airflow.utils.module_loading import import_string

    classpath, kwargs = trigger.serialize()
    stored = Trigger.encrypt_kwargs(kwargs)  # the `trigger.kwargs` column
    loaded = Trigger._decrypt_kwargs(stored)
    try:  # Airflow 3.1+: the triggerer strips serialisation artefacts before calling the class
        from airflow.serialization.decoders import smart_decode_trigger_kwargs
    except ImportError:
        pass
    else:
        loaded = {key: smart_decode_trigger_kwargs(value) for key, value in loaded.items()}
    return import_string(classpath)(**loaded)  # type: ignore[no-any-return]


def train(hook: PredictionOneHook, name: str = "restarts") -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, name, CONFIG)
    return urls.external_process_id


def trained_model(hook: PredictionOneHook) -> int:
    epid = train(hook)
    deadline = time.monotonic() + 30
    while hook.get_train_status(epid).status != "finished":
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.1)
    model_id = hook.find_model_id("restarts")
    assert model_id is not None
    return model_id


def start_train(connections: EmulatorProcess) -> StatusTrigger:
    # User status sets are kwargs too: they must survive the round trip.
    statuses = {"success_statuses": ["finished"], "failure_statuses": ["failed", "error"]}
    return PredictionOneTrainTrigger(external_process_id=train(PredictionOneHook()), **waiting(**statuses))


def start_retrain(connections: EmulatorProcess) -> StatusTrigger:
    hook = PredictionOneHook()
    model_id = trained_model(hook)
    upload = hook.get_retrain_upload_url(model_id, "new_month.csv")
    hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "new_month.csv"))
    return PredictionOneRetrainTrigger(retrain_job_id=upload.retrain_job_id, model_id=model_id, **waiting())


def start_prediction_api(connections: EmulatorProcess) -> StatusTrigger:
    hook = PredictionOneHook()
    classifier_id = hook.create_prediction_api(trained_model(hook)).classifier_id
    return PredictionOnePredictionApiTrigger(classifier_id=classifier_id, **waiting())


def start_aitems(connections: EmulatorProcess) -> StatusTrigger:
    hook = AitemsHook()
    service_id = hook.create_service("restart_shop")["serviceId"]
    versions = hook.request_training(service_id, ["personalRecommend", "relatedItem", "pop"])
    return AitemsTrainingTrigger(service_id=service_id, versions=versions, **waiting(conn_id="aitems_default"))


def waiting(conn_id: str = "predone_default", **statuses: Any) -> dict[str, Any]:
    return {"conn_id": conn_id, "poll_interval": 0.2, "deadline": time.time() + 60, **statuses}


async def wait_until(probe: Callable[[], bool]) -> None:
    async with asyncio.timeout(15):
        while not await asyncio.to_thread(probe):  # noqa: ASYNC110 - polls another process
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "start",
    [start_train, start_retrain, start_prediction_api, start_aitems],
    ids=["train", "retrain", "prediction_api", "aitems"],
)
async def test_cancelled_mid_poll_and_rebuilt_from_stored_kwargs_resumes_the_same_job(
    connections: EmulatorProcess, start: Callable[[EmulatorProcess], StatusTrigger]
) -> None:
    trigger = start(connections)
    before = connections.state()
    # The next vendor request — the trigger's first status check — is answered only after 10 s.
    connections.configure(fault_rate=1.0, fault_seed=SLOW_SEED, slow_seconds=10)
    running = asyncio.ensure_future(trigger.run().__anext__())
    await wait_until(lambda: connections.state()["requests"] > before["requests"])  # the check is in flight
    await asyncio.sleep(0.1)
    assert not running.done()
    running.cancel()  # what a triggerer does to its triggers when it stops
    with pytest.raises(asyncio.CancelledError):
        await running
    assert connections.state()["faults"]["slow"] == 1
    assert not _http._SESSIONS, "the cancelled trigger left its HTTP session open"

    connections.configure(fault_rate=0.0)
    rebuilt = as_the_triggerer_rebuilds(trigger)
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == trigger.serialize()
    async with asyncio.timeout(30):
        event = (await rebuilt.run().__anext__()).payload
    assert event["status"] == "success", event
    assert {k: event[k] for k in trigger.job_ids()} == trigger.job_ids()
    validate_event(event, *trigger.job_ids())
    after = connections.state()
    assert {k: after[k] for k in WORK_COUNTERS} == {k: before[k] for k in WORK_COUNTERS}
