"""PredictionOneHook against the emulator running as a real server process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, EMULATOR_OPTIONS, alarm_restored, predone_connection, wait_for

from airflow_provider_predone import files, scoring
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    JobNotFinishedError,
    NotFoundError,
    PredictionApiNotRunningError,
)
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import ApiRequest, Credential

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
ONE_ROW = b"".join(open(DATA / "score.csv", "rb").readlines()[:2])  # noqa: SIM115


def train_model(hook: PredictionOneHook, name: str = "m") -> tuple[str, int]:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, name, CONFIG)
    wait_for("the training to finish", lambda: hook.get_train_status(urls.external_process_id).status == "finished")
    model_id = hook.find_model_id(name)
    assert model_id is not None
    return urls.external_process_id, model_id


@pytest.fixture
def hook(connections: EmulatorProcess) -> PredictionOneHook:
    return PredictionOneHook()


@pytest.fixture
def model(hook: PredictionOneHook) -> tuple[str, int]:
    return train_model(hook)


@pytest.fixture
def prediction_api(hook: PredictionOneHook, model: tuple[str, int]) -> api.PredictionApi:
    created = hook.create_prediction_api(model[1])
    return wait_for(
        "the prediction API to run",
        lambda: (p := hook.get_prediction_api(created.classifier_id)).status == "running" and p,
    )


def test_test_connection_obtains_a_train_key(hook: PredictionOneHook, connections: EmulatorProcess) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert connections.state()["api_keys_issued"] == 1


def test_test_connection_reports_the_vendor_message(connections: EmulatorProcess, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD", json.dumps({"conn_type": "predone", "host": connections.url, "password": "nope"})
    )
    ok, message = PredictionOneHook("bad").test_connection()
    assert not ok
    assert "Not_found_credential." in message
    assert "'bad'" in message
    # The user typed a "Secret key" (the form's label for the password): the error says so.
    assert "Secret key (its password field) is wrong" in message
    assert "API key is wrong" not in message


def test_test_connection_fails_fast_on_a_refused_port(monkeypatch) -> None:
    """A real closed port on 127.0.0.1: one attempt, no retries, a message naming the refusal."""
    import socket

    import requests

    attempts: list[str] = []
    send = requests.Session.request

    def counted(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
        attempts.append(url)  # a spy: the request still goes to the real closed port
        return send(session, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counted)
    with socket.socket() as probe:  # bound but never listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_CONN_CLOSED", predone_connection(f"http://127.0.0.1:{port}"))
        hook = PredictionOneHook("closed")
        ok, message = hook.test_connection()
    assert not ok
    assert f"Connection refused by http://127.0.0.1:{port}" in message
    assert "check the host" in message
    # Tasks keep their retries (5 by default, about 24 s of backoff); the test made one attempt.
    assert hook.connection_info.settings.max_retries == 5
    assert len(attempts) == 1, attempts


def test_training_endpoints(hook: PredictionOneHook, connections: EmulatorProcess, tmp_path: Path) -> None:
    urls = hook.get_upload_urls("csv")
    sent = hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="t")
    hook.upload(urls.eval_data_set_upload_url, files.resolve("eval_data", DATA / "eval.csv"), label="e")
    assert sent == (DATA / "train.csv").stat().st_size
    info = hook.get_column_info(urls.external_process_id)
    assert info["trainingdata_row_count"] == 2000
    assert "purchased_premium" in info["raw_column_names"]
    with pytest.raises(NotFoundError, match="Not found model"):
        hook.get_train_status(urls.external_process_id)
    hook.create_model(urls.external_process_id, "endpoints", CONFIG)
    status = wait_for(
        "the training to finish",
        lambda: (s := hook.get_train_status(urls.external_process_id)).status == "finished" and s,
    )
    assert status.result_url
    assert "result_url" not in repr(status)
    written = hook.download(status.result_url, tmp_path / "result.zip", label="result")
    assert written == (tmp_path / "result.zip").stat().st_size > 0
    assert "model_summary.json" in files.safe_extract(tmp_path / "result.zip", tmp_path / "result")
    models = list(hook.list_models(page_size=1))
    model_id = hook.find_model_id("endpoints")
    assert [m["model_id"] for m in models] == [model_id]
    data_sets = list(hook.list_data_sets())
    assert len(data_sets) == 2
    for data_set in data_sets:
        hook.delete_data_set(data_set["data_set_id"])
    assert list(hook.list_data_sets()) == []
    hook.delete_model(model_id)
    assert list(hook.list_models()) == []
    with pytest.raises(NotFoundError, match="This model may be deleted"):
        hook.delete_model(model_id)
    assert connections.state()["trainings_started"] == 1


def test_pagination_follows_every_page(hook: PredictionOneHook) -> None:
    ids = {train_model(hook, f"page{i}")[1] for i in range(3)}
    assert {m["model_id"] for m in hook.list_models(page_size=2)} == ids


def test_retrain_and_switch(hook: PredictionOneHook, prediction_api: api.PredictionApi, connections) -> None:
    model_id = prediction_api.model_id
    assert model_id is not None
    upload = hook.get_retrain_upload_url(model_id, "新しい月.csv")
    assert not hook.retrain_started(upload.retrain_job_id, model_id)
    with pytest.raises(JobNotFinishedError, match="Retrain job is not finished"):
        hook.switch_model(upload.retrain_job_id, model_id)
    hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "new_month.csv"))
    assert hook.retrain_started(upload.retrain_job_id, model_id)
    status = wait_for(
        "the retrain job to finish",
        lambda: (s := hook.get_retrain_status(upload.retrain_job_id, model_id)).status == "job_finished" and s,
    )
    assert status.download_url
    hook.switch_model(upload.retrain_job_id, model_id)
    hook.switch_model(upload.retrain_job_id, model_id)  # idempotent
    assert connections.state()["model_switches"] == 1
    assert hook.infer(prediction_api, ONE_ROW).version == 2


def test_prediction_api_endpoints(hook: PredictionOneHook, prediction_api: api.PredictionApi) -> None:
    assert "api_key" not in repr(prediction_api)
    assert "api_key" not in prediction_api.public()
    assert [p.classifier_id for p in hook.list_prediction_apis()] == [prediction_api.classifier_id]
    result = hook.infer(prediction_api, ONE_ROW, api.InferenceOptions(ar=True, nr=True))
    assert set(result.outputs) == {"prediction_valid.csv", "prediction_analysis.csv"}
    assert result.outputs["prediction_valid.csv"].startswith(b"prediction,probability\n")
    stopped = hook.update_prediction_api(prediction_api.classifier_id, active=False)
    assert stopped.status == "stopped"
    with pytest.raises(PredictionApiNotRunningError, match="5031030101"):
        hook.infer(prediction_api, ONE_ROW)
    hook.update_prediction_api(prediction_api.classifier_id, active=True)
    with pytest.raises(BadRequestError, match="4001030104"):
        hook.infer(prediction_api, b"only_one_column\n1\n")
    hook.delete_prediction_api(prediction_api.classifier_id)
    with pytest.raises(NotFoundError, match="Not found classifier"):
        hook.get_prediction_api(prediction_api.classifier_id)


def test_api_keys_are_cached_until_expiry(hook: PredictionOneHook, connections: EmulatorProcess) -> None:
    for _ in range(3):
        hook.list_models()
        list(hook.list_models())
    assert connections.state()["api_keys_issued"] == 1
    connections.expire_keys()  # the service now answers Inactive_credential. for the cached key
    list(hook.list_models())
    assert connections.state()["api_keys_issued"] == 2


def test_a_cached_key_refused_under_many_concurrent_checks_is_replaced_once(
    hook: PredictionOneHook, model: tuple[str, int], connections: EmulatorProcess
) -> None:
    """
    A triggerer runs hundreds of status checks on one cached key. When the service stops
    accepting it (expired early, revoked, the service restored from a backup), the first check
    to be refused drops it and the others find it replaced: every check gets its answer, and
    one new key is obtained.
    """
    epid = model[0]

    async def checks(n: int) -> list[str]:
        async with hook.async_client() as client:
            return [
                status.status
                for status in await asyncio.gather(*(client.call(api.get_train_status(epid)) for _ in range(n)))
            ]

    assert asyncio.run(checks(1)) == ["finished"]
    issued = connections.state()["api_keys_issued"]
    connections.expire_keys()  # the cached key is now refused: Inactive_credential.
    assert asyncio.run(checks(30)) == ["finished"] * 30
    assert connections.state()["api_keys_issued"] == issued + 1


def test_a_key_about_to_expire_is_renewed(connections: EmulatorProcess) -> None:
    connections.configure(api_key_ttl=60)  # inside the 5-minute renewal margin
    try:
        hook = PredictionOneHook()
        list(hook.list_models())
        list(hook.list_models())
        assert connections.state()["api_keys_issued"] == 2
    finally:
        connections.configure(api_key_ttl=3600)


def test_retrain_keys_are_per_model(hook: PredictionOneHook, model, connections) -> None:
    other = train_model(hook, "other")[1]
    without_model = ApiRequest(
        "Get API Key", "GET", "/api-key", dict, params={"credential_type": "retrain"}, credential=Credential.SECRET_KEY
    )
    with pytest.raises(BadRequestError, match="Model id is required"):
        hook.call(without_model)
    job = hook.get_retrain_upload_url(model[1], "a.csv")
    with pytest.raises(NotFoundError, match="Not found retrain job"):
        hook.get_retrain_status(job.retrain_job_id, other)
    with pytest.raises(NotFoundError, match="This model may be deleted"):
        hook.get_retrain_upload_url(999, "a.csv")


def test_keys_given_in_the_connection_replace_the_secret_key(connections: EmulatorProcess, monkeypatch) -> None:
    key = PredictionOneHook().get_api_key("train")
    monkeypatch.setenv(
        "AIRFLOW_CONN_DIRECT",
        json.dumps({"conn_type": "predone", "host": connections.url, "extra": {"train_api_key": key}}),
    )
    API_KEYS.clear()
    issued = connections.state()["api_keys_issued"]
    assert list(PredictionOneHook("direct").list_models()) == []
    assert connections.state()["api_keys_issued"] == issued
    with pytest.raises(AuthenticationError, match=r"no Secret key \(password field\)"):
        PredictionOneHook("direct").get_api_key("train")


def test_wrong_key_in_the_connection_is_an_authentication_error(connections, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG",
        json.dumps({"conn_type": "predone", "host": connections.url, "extra": {"train_api_key": "wrong-key"}}),
    )
    with pytest.raises(AuthenticationError, match=r"Not_found_credential.*connection 'wrong'"):
        list(PredictionOneHook("wrong").list_models())


@pytest.mark.parametrize(
    ("extra", "host", "expected"),
    [
        ({}, None, "https://developer-api.predictionone.sony.biz/v1/external"),
        ({"service": "prediction_one"}, None, "https://developer-api.predictionone.sony.biz/v1/external"),
        (
            {"service": "easy_predictive_analytics"},
            None,
            "https://developer-api.easy-predictive-analytics.sony.com/v1/external",
        ),
        ({"service": "easy_predictive_analytics"}, "http://127.0.0.1:8765/", "http://127.0.0.1:8765/v1/external"),
        (
            {"extra__predone__service": "easy_predictive_analytics"},
            None,
            "https://developer-api.easy-predictive-analytics.sony.com/v1/external",
        ),
    ],
)
def test_service_selects_the_host(monkeypatch, extra, host, expected) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SVC", json.dumps({"conn_type": "predone", "host": host, "password": "x", "extra": extra})
    )
    assert PredictionOneHook("svc").connection_info.settings.base_url == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"service": "prediction_two"}, "service must be one of"),
        ({"timeout": "soon"}, "'timeout' must be a number"),
        ({"max_retries": -1}, "'max_retries' must be >= 0"),
    ],
)
def test_bad_connection_settings_name_the_field(monkeypatch, extra, message) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SVC", json.dumps({"conn_type": "predone", "password": "x", "extra": extra}))
    with pytest.raises(InvalidInputError, match=message):
        _ = PredictionOneHook("svc").connection_info


def test_batch_scoring_keeps_input_order_when_answers_overtake(
    prediction_api: api.PredictionApi, connections: EmulatorProcess, tmp_path: Path
) -> None:
    """Some answers are held back (the emulator's "slow" fault, others are retried) and later rows
    finish first: the service never holds more than `concurrency` requests, all of them at
    times, and the output follows the input, every row once."""
    from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

    connections.configure(fault_rate=0.1, fault_seed=7, slow_seconds=0.3, inference_latency_ms=5)
    output = tmp_path / "scores.csv"
    scored = PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=prediction_api.classifier_id,
        input_data=str(DATA / "score.csv"),
        output_data=str(output),
        id_column="customer_id",
        concurrency=4,
    ).execute({})  # type: ignore[arg-type]  # no task context is needed to score
    state = connections.state()
    assert state["faults"]["slow"] > 0
    assert state["max_inferences_in_flight"] == 4
    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (DATA / "score.csv").open(newline="") as handle:
        inputs = list(csv.DictReader(handle))
    assert scored["rows_scored"] == len(inputs) == 500
    assert [r["row_number"] for r in rows] == [str(i) for i in range(1, 501)]
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in inputs]


def test_batch_scoring_stops_at_a_failed_row(
    prediction_api: api.PredictionApi, connections: EmulatorProcess, tmp_path: Path, monkeypatch
) -> None:
    """A row whose request fails for good (here a fault, with retries off): the task fails
    naming it, sends no more rows and leaves no output, not even half of one."""
    from airflow_provider_predone.exceptions import TransientApiError
    from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

    monkeypatch.setenv("AIRFLOW_CONN_NO_RETRIES", predone_connection(connections.url, max_retries=0, timeout=5))
    connections.configure(fault_rate=0.02, fault_seed=3, slow_seconds=0.2, inference_latency_ms=5)
    scored_before = connections.state()["predictions"]
    with pytest.raises(TransientApiError, match=r"^Row (\d+): ") as raised:
        PredictionOneBatchPredictOperator(
            task_id="score",
            classifier_id=prediction_api.classifier_id,
            input_data=str(DATA / "score.csv"),
            output_data=str(tmp_path / "scores.csv"),
            concurrency=4,
            predone_conn_id="no_retries",
        ).execute({})  # type: ignore[arg-type]
    failed_row = int(str(raised.value).split(":")[0].removeprefix("Row "))
    assert 1 < failed_row < 400, "the seed must fail a row well before the end"
    assert list(tmp_path.iterdir()) == []
    # Rows the service scored: at most those the window lets run ahead of the failed one.
    scored = connections.state()["predictions"] - scored_before
    assert scored <= failed_row + scoring.WINDOW * 4, (scored, failed_row)


def test_batch_scoring_ends_at_airflow_execution_timeout(
    prediction_api: api.PredictionApi, connections: EmulatorProcess, tmp_path: Path
) -> None:
    """Airflow enforces a task's execution_timeout with a SIGALRM handler that raises. The
    exception must end the scoring at once and leave no output. (It was logged as a failed
    callback, and the run went on to the last row: always on uvloop, under load on asyncio.)"""
    from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

    try:  # Airflow 3.1+
        from airflow.sdk.exceptions import AirflowTaskTimeout
        from airflow.sdk.execution_time.timeout import timeout
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import AirflowTaskTimeout  # type: ignore[no-redef]
        from airflow.utils.timeout import timeout  # type: ignore[no-redef]

    connections.configure(inference_latency_ms=50)  # 500 rows one at a time: 25 s to the end
    before = connections.state()["predictions"]
    with alarm_restored(), pytest.raises(AirflowTaskTimeout), timeout(1):
        PredictionOneBatchPredictOperator(
            task_id="score",
            classifier_id=prediction_api.classifier_id,
            input_data=str(DATA / "score.csv"),
            output_data=str(tmp_path / "scores.csv"),
            concurrency=1,
        ).execute({})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    assert connections.state()["predictions"] - before < 100


def test_secrets_are_masked(hook: PredictionOneHook, prediction_api: api.PredictionApi, connections) -> None:
    from airflow.providers.common.compat.sdk import redact

    secrets = connections.secrets()  # every key the emulator issued went through this process's hook
    for key in secrets["api_keys"] + secrets["classifier_api_keys"]:
        assert redact(f"x {key} y") == "x *** y", key


async def test_async_client_shares_one_session_and_the_key(connections: EmulatorProcess) -> None:
    hook = PredictionOneHook()
    sync_hook = PredictionOneHook()
    epid, _ = train_model(sync_hook)
    API_KEYS.clear()
    async with hook.async_client() as first, hook.async_client() as second:
        assert first._transport.session is second._transport.session
        statuses = await asyncio.gather(*(first.call(api.get_train_status(epid)) for _ in range(20)))
    assert {s.status for s in statuses} == {"finished"}
    assert first._transport.session.closed
    assert connections.state()["api_keys_issued"] == 2  # one for the sync hook, one (single flight) async


def test_transient_faults_are_retried_without_duplicating_work(tmp_path: Path, monkeypatch) -> None:
    # A process of its own: faults on every request, including "processed but the answer lost".
    with EmulatorProcess(
        test_controls=True, fault_rate=0.3, fault_seed=7, slow_seconds=1.5, **EMULATOR_OPTIONS
    ) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PREDONE_DEFAULT",
            predone_connection(
                emulator.url, timeout=1, max_retries=12, retry_wait_seconds=0.05, retry_max_wait_seconds=0.2
            ),
        )
        API_KEYS.clear()
        hook = PredictionOneHook()
        _, model_id = train_model(hook)
        created = hook.create_prediction_api(model_id)
        upload = hook.get_retrain_upload_url(model_id, "r.csv")
        hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "new_month.csv"))
        state = emulator.state()
    assert sum(state["faults"].values()) > 3, state
    assert state["trainings_started"] == 1
    assert state["classifiers"] == 1
    assert state["retrain_jobs_started"] == 1
    assert created.classifier_id


def test_upload_streams_without_holding_the_file(tmp_path: Path, connections: EmulatorProcess) -> None:
    """300 MB through the hook in a fresh process: its peak memory must not follow the file size."""
    big = tmp_path / "big.csv"
    line = b"a,b,c,d\n" + b"1,2.5,abc,2026-01-01\n" * 4096
    with big.open("wb") as out:
        for _ in range(300 * 1024 * 1024 // len(line) + 1):
            out.write(line)
    script = textwrap.dedent(
        """
        import json, os, sys
        def peak_kib():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        from airflow_provider_predone import files, scoring
        from airflow_provider_predone.hooks.predone import PredictionOneHook
        hook = PredictionOneHook()
        urls = hook.get_upload_urls()
        source = files.resolve("train_data", sys.argv[1])
        before = peak_kib()
        sent = hook.upload(urls.learn_data_set_upload_url, source, label="big")
        print(json.dumps({"sent": sent, "growth_kib": peak_kib() - before}))
        """
    )
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, "-c", script, str(big)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sent"] == big.stat().st_size >= 300 * 1024 * 1024
    assert report["growth_kib"] < 64 * 1024, report
    assert connections.state()["bytes_uploaded"] == big.stat().st_size
