"""Fault injection: rate, kinds, determinism per seed, and what each kind does to a client."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from emulator_support import CHURN_CONFIG, TIMEOUT, PredoneClient, get_api_key

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.emulator.faults import FAULT_KINDS, FaultInjector

SLOW_SECONDS = 0.4  # well above a loaded machine's normal answer time, so "slow" is unambiguous


def seed_whose_first_fault_is(kind: str) -> int:
    """A seed whose first draw at rate 1 is ``kind`` (the injector's own sequence)."""
    return next(seed for seed in range(10_000) if FaultInjector(seed).draw(1.0) == kind)


def observe(session: requests.Session, url: str) -> str:
    """What a client sees of one cheap vendor request: a status, ``dropped`` or ``slow``."""
    started = time.monotonic()
    try:
        response = session.get(f"{url}/v1/external/models", timeout=TIMEOUT)
    except requests.ConnectionError:
        return "dropped"
    if time.monotonic() - started >= SLOW_SECONDS * 0.75:
        return "slow"
    return str(response.status_code)


def test_fault_statistics_and_determinism(fresh_emulator: Callable[..., EmulatorProcess]) -> None:
    emulator = fresh_emulator(fault_rate=0.25, fault_seed=1234, slow_seconds=SLOW_SECONDS)
    with requests.Session() as session:
        first = [observe(session, emulator.url) for _ in range(400)]
        counts = emulator.state()["faults"]
        emulator.reset()  # re-seeds: the same sequence again
        second = [observe(session, emulator.url) for _ in range(400)]
    assert first == second
    assert emulator.state()["faults"] == counts
    assert emulator.state()["requests"] == 400
    assert set(counts) == set(FAULT_KINDS)
    assert all(count > 0 for count in counts.values()), counts
    assert 60 <= sum(counts.values()) <= 140  # 100 expected; sd about 9
    seen = Counter(first)
    assert seen["400"] == 400 - sum(counts.values())  # the endpoint's own answer (no key)
    assert seen["dropped"] == counts["reset"] + counts["lost"]
    assert seen["slow"] == counts["slow"]
    for status in ("500", "502", "503", "429"):
        assert seen[status] == counts[f"http_{status}"]
    # Another seed, another sequence.
    emulator.configure(fault_seed=99)
    with requests.Session() as session:
        assert [observe(session, emulator.url) for _ in range(100)] != first[:100]


def test_admin_endpoints_never_fault(emulator: EmulatorProcess) -> None:
    emulator.configure(fault_rate=1.0, fault_seed=5)
    for _ in range(50):
        assert emulator.state()["requests"] == 0
    assert sum(emulator.state()["faults"].values()) == 0


def test_http_faults_answer_before_processing(emulator: EmulatorProcess) -> None:
    emulator.configure(fault_rate=1.0, fault_seed=seed_whose_first_fault_is("http_429"))
    response = get_api_key(emulator.url)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()
    assert emulator.state()["api_keys_issued"] == 0


def test_lost_answer_after_the_work_is_done(
    emulator: EmulatorProcess, predone: PredoneClient, data: dict[str, Path]
) -> None:
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "lost", "config": CHURN_CONFIG}
    emulator.configure(fault_rate=1.0, fault_seed=seed_whose_first_fault_is("lost"))
    with pytest.raises(requests.ConnectionError):
        predone.call("POST", "/models", key, json=body)
    emulator.configure(fault_rate=0.0)
    assert emulator.state()["trainings_started"] == 1
    assert emulator.state()["faults"]["lost"] == 1
    # A naive retry duplicates the work.
    assert predone.call("POST", "/models", key, json=body).status_code == 200
    assert emulator.state()["trainings_started"] == 2


def test_a_lost_upload_landed_and_a_retry_says_so(
    emulator: EmulatorProcess, predone: PredoneClient, data: dict[str, Path]
) -> None:
    key = predone.key()
    url = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    emulator.configure(fault_rate=1.0, fault_seed=seed_whose_first_fault_is("lost"))
    with pytest.raises(requests.ConnectionError):
        requests.put(url["learn_data_set_upload_url"], data=data["learn"].read_bytes(), timeout=TIMEOUT)
    emulator.configure(fault_rate=0.0)
    assert emulator.state()["uploads"] == 1
    retry = requests.put(url["learn_data_set_upload_url"], data=data["learn"].read_bytes(), timeout=TIMEOUT)
    assert retry.status_code == 412


def test_a_reset_upload_never_lands(emulator: EmulatorProcess, predone: PredoneClient, tmp_path: Path) -> None:
    key = predone.key()
    url = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,b\n" + b"1,2\n" * 2_000_000)  # 8 MB: the body is still being sent when the server hangs up
    emulator.configure(fault_rate=1.0, fault_seed=seed_whose_first_fault_is("reset"))
    with big.open("rb") as source, pytest.raises(requests.ConnectionError):
        requests.put(url["learn_data_set_upload_url"], data=source, timeout=TIMEOUT)
    emulator.configure(fault_rate=0.0)
    assert (emulator.state()["uploads"], emulator.state()["faults"]["reset"]) == (0, 1)
    with big.open("rb") as source:
        assert requests.put(url["learn_data_set_upload_url"], data=source, timeout=TIMEOUT).status_code == 200
    assert emulator.state()["bytes_uploaded"] == big.stat().st_size


def test_slow_holds_a_complete_answer(emulator: EmulatorProcess) -> None:
    default_slow_seconds = emulator.configure()["slow_seconds"]
    emulator.configure(fault_rate=1.0, fault_seed=seed_whose_first_fault_is("slow"), slow_seconds=0.5)
    started = time.monotonic()
    try:
        response = get_api_key(emulator.url)
    finally:  # the shared emulator's fixture does not restore this setting
        emulator.configure(slow_seconds=default_slow_seconds)
    assert time.monotonic() - started >= 0.5
    assert response.status_code == 200
    assert response.json()["api_key"]
