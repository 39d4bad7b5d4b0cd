"""The emulator as a program: command line, process wrapper, thread runner, admin endpoints, load."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from emulator_support import CHURN_CONFIG, TIMEOUT, PredoneClient, get_api_key, infer

from airflow_provider_predone.emulator import EmulatorProcess, serve_in_thread

LISTENING = re.compile(r"predone-emulator listening on http://127\.0\.0\.1:(\d+)\n")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_command_prints_one_line_and_stops_cleanly(signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "airflow_provider_predone.emulator", "--port", "0", "--job-seconds", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        match = LISTENING.fullmatch(process.stdout.readline())
        assert match is not None
        url = f"http://127.0.0.1:{match.group(1)}"
        assert requests.get(f"{url}/_emulator/state", timeout=TIMEOUT).json()["requests"] == 0
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr
    assert stdout == ""


def test_test_controls_are_off_unless_the_flag_turns_them_on() -> None:
    """A ``predone-emulator`` started by hand lists no secret and takes no change from anyone."""
    with EmulatorProcess() as emulator:
        get_api_key(emulator.url, "predone-demo-secret-key")  # a key the secrets listing would show
        assert requests.get(f"{emulator.url}/_emulator/state", timeout=TIMEOUT).json()["api_keys_issued"] == 1
        assert requests.get(f"{emulator.url}/_emulator/secrets", timeout=TIMEOUT).status_code == 404
        for name in ("reset", "config", "expire-keys"):
            response = requests.post(f"{emulator.url}/_emulator/{name}", json={"fault_rate": 1}, timeout=TIMEOUT)
            assert response.status_code == 404, name
        assert requests.get(f"{emulator.url}/_emulator/state", timeout=TIMEOUT).json()["api_keys_issued"] == 1
        with pytest.raises(RuntimeError, match=r"test_controls=True"):
            emulator.secrets()
    with EmulatorProcess(test_controls=True) as emulator:
        assert requests.get(f"{emulator.url}/_emulator/secrets", timeout=TIMEOUT).status_code == 200
    for option in ("--fault-rate", "--retrain-upload-hold-before", "--retrain-upload-hold-after"):
        command = [sys.executable, "-m", "airflow_provider_predone.emulator", option, "0.5"]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2
        assert "is test support: turn it on with --test-controls" in refused.stderr


def test_help_names_each_default_once() -> None:
    command = [sys.executable, "-m", "airflow_provider_predone.emulator", "--help"]
    text = " ".join(subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.split())
    assert "(default: None)" not in text
    assert "(default: a temporary directory)" in text
    assert "--test-controls turn on the test-only controls" in text
    helps = re.split(r"\s--[a-z-]+ [A-Z_]+ ", text)[1:]  # one per option that takes a value
    assert len(helps) >= 15
    for help_text in helps:
        assert help_text.count("(default:") <= 1, help_text


def test_a_failed_start_is_reported_with_stderr() -> None:
    with pytest.raises(RuntimeError, match="did not start") as failure:
        EmulatorProcess(fault_rate="often").start()
    assert "argument --fault-rate: invalid float value: 'often'" in str(failure.value)


def test_options_become_flags_and_reach_the_server(
    fresh_emulator: Callable[..., EmulatorProcess], tmp_path: Path, data: dict[str, Path]
) -> None:
    options: dict[str, Any] = {
        "job_seconds": 1.5,
        "fault_seed": 7,
        "data_dir": tmp_path,
        "verbose": True,
        "secret_key": "s3cret",
    }
    assert EmulatorProcess(**options).command()[3:] == [
        "--port", "0", "--job-seconds", "1.5", "--fault-seed", "7", "--data-dir", str(tmp_path), "--verbose",
        "--secret-key", "s3cret",
    ]  # fmt: skip
    emulator = fresh_emulator(**options)
    config = emulator.configure()
    assert (config["job_seconds"], config["fault_seed"], config["data_dir"], config["secret_key"]) == (
        1.5,
        7,
        str(tmp_path),
        "s3cret",
    )
    response = get_api_key(emulator.url, "s3cret")
    key = response.json()["api_key"]
    PredoneClient(emulator.url).upload_training_data(key, data["learn"])
    stored = [path for path in (tmp_path / "objects").iterdir() if path.stat().st_size]
    assert [path.read_bytes() for path in stored] == [data["learn"].read_bytes()]
    assert "/v1/external/api-key" in emulator.stderr()  # the access log of --verbose


def test_serve_in_thread(data: dict[str, Path]) -> None:
    with serve_in_thread(job_seconds=0.2, build_seconds=0.1) as url:
        assert url.startswith("http://127.0.0.1:")
        predone = PredoneClient(url)
        key = predone.key()
        assert predone.train(key, data["learn"], CHURN_CONFIG)["status"] == "finished"
        assert requests.get(f"{url}/_emulator/state", timeout=TIMEOUT).json()["trainings_started"] == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/state", timeout=TIMEOUT)


def test_admin_config_secrets_and_reset(
    emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]
) -> None:
    key, model_id = trained
    classifier = predone.deploy(key, model_id)
    retrain_key = predone.key("retrain", model_id)
    upload = predone.call("GET", "/retrain_jobs/upload_url", retrain_key, params={"filename": "a.csv"}).json()
    secrets = emulator.secrets()
    assert secrets["secret_key"] == "predone-demo-secret-key"
    assert secrets["aitems_secret_key"] == "demo-aitems-secret-key"
    assert {key, retrain_key} <= set(secrets["api_keys"])
    assert secrets["classifier_api_keys"] == [classifier["api_key"]]
    assert upload["upload_url"].rsplit("=", 1)[1] in secrets["url_signatures"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", signature) for signature in secrets["url_signatures"])

    assert emulator.configure(job_seconds=2, inference_latency_ms=100)["job_seconds"] == 2.0
    for bad in ({"colour": 1}, {"job_seconds": "fast"}, {"fault_rate": 2}, {"fault_seed": 1.5}, {"job_seconds": -1}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            emulator.configure(**bad)
        assert refused.value.code == 400
        assert json.load(refused.value)["error"]
    started = time.monotonic()
    assert infer(classifier, "customer_id,age,plan,visits,signup,spend\nC1,30,pro,20,2024-02-02,50\n").ok
    assert time.monotonic() - started >= 0.1

    state = emulator.state()
    assert (state["api_keys_issued"], state["classifiers"]) == (2, 1)
    assert state["requests"] > 0
    emulator.reset()
    assert emulator.state() == {
        "uploads": 0,
        "bytes_uploaded": 0,
        "trainings_started": 0,
        "retrain_jobs_started": 0,
        "model_switches": 0,
        "classifiers": 0,
        "predictions": 0,
        "max_inferences_in_flight": 0,
        "aitems_trainings_started": 0,
        "api_keys_issued": 0,
        "requests": 0,
        "held_requests": 0,
        "faults": {kind: 0 for kind in state["faults"]},
    }
    secrets = emulator.secrets()
    assert (secrets["api_keys"], secrets["classifier_api_keys"], secrets["url_signatures"]) == ([], [], [])
    assert predone.call("GET", "/models", key).json()["message"] == "Not_found_credential."


def test_thousands_of_concurrent_keep_alive_polls(
    emulator: EmulatorProcess, predone: PredoneClient, data: dict[str, Path]
) -> None:
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "polled", "config": CHURN_CONFIG}
    predone.call("POST", "/models", key, json=body).raise_for_status()
    url = f"{predone.base}/models/results?external_process_id={process_id}"

    async def poll_concurrently(connections: int, polls_each: int) -> list[str]:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, headers={"x-api-key": key}) as session:

            async def client() -> list[str]:
                statuses = []
                for _ in range(polls_each):
                    async with session.get(url) as response:
                        statuses.append((await response.json())["status"])
                return statuses

            results = await asyncio.gather(*(client() for _ in range(connections)))
        return [status for statuses in results for status in statuses]

    started = time.monotonic()
    statuses = asyncio.run(poll_concurrently(connections=1000, polls_each=4))
    elapsed = time.monotonic() - started
    assert len(statuses) == 4000
    assert set(statuses) <= {"waiting", "running", "finished"}
    assert elapsed < 30, elapsed
    assert emulator.state()["requests"] >= 4000
