"""AitemsHook against the emulator running as a real server process."""

from __future__ import annotations

import time

import pytest
from helpers import aitems_connection

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import AuthenticationError, BadRequestError, NotFoundError
from airflow_provider_predone.hooks.aitems import AitemsHook


@pytest.fixture
def hook(connections: EmulatorProcess) -> AitemsHook:
    return AitemsHook()


def wait_for_statuses(hook: AitemsHook, service_id: str, versions: dict[str, str]) -> dict[str, str]:
    deadline = time.monotonic() + 20
    while True:
        statuses = {t: hook.get_training(service_id, t, v)["status"] for t, v in versions.items()}
        if all(s not in ("requesting", "learning") for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def test_test_connection_makes_one_signed_call(hook: AitemsHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message


def test_test_connection_fails_fast_on_a_refused_port(monkeypatch) -> None:
    """A real closed port on 127.0.0.1: one attempt, no retries, a message naming the refusal."""
    import socket

    import requests

    attempts: list[str] = []
    send = requests.Session.request

    def counted(session: requests.Session, method: str, url: str, **kwargs: object) -> requests.Response:
        attempts.append(url)  # a spy: the request still goes to the real closed port
        return send(session, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counted)
    with socket.socket() as probe:  # bound but never listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_CONN_CLOSED", aitems_connection(f"http://127.0.0.1:{port}"))
        ok, message = AitemsHook("closed").test_connection()
    assert not ok
    assert f"Connection refused by http://127.0.0.1:{port}" in message
    assert len(attempts) == 1, attempts


def test_wrong_secret_is_an_authentication_error_naming_the_connection(connections, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_SECRET", aitems_connection(connections.url, secret="not-the-secret"))
    hook = AitemsHook("wrong_secret")
    with pytest.raises(AuthenticationError, match=r"HTTP 401.*connection 'wrong_secret'"):
        hook.list_services()
    ok, message = hook.test_connection()
    assert not ok
    assert "Authentication Failed" in message


def test_training_lifecycle(hook: AitemsHook, connections: EmulatorProcess) -> None:
    service = hook.create_service("shop_1", "batch", "test")
    service_id = service["serviceId"]
    versions = hook.request_training(service_id, ["personalRecommend", "pop"], hp_config={"is_enabled": True})
    assert set(versions) == {"personalRecommend", "pop"}
    assert wait_for_statuses(hook, service_id, versions) == {"personalRecommend": "completed", "pop": "completed"}
    second = hook.request_training(service_id, ["pop"])
    assert second["pop"] != versions["pop"]
    assert connections.state()["aitems_trainings_started"] == 3
    assert [t["version"] for t in hook.list_trainings(service_id, is_recent=True) if t["type"] == "pop"] == [
        second["pop"]
    ]


def test_a_failed_training_reports_its_status(hook: AitemsHook) -> None:
    service_id = hook.create_service("shop_2")["serviceId"]
    versions = hook.request_training(
        service_id, ["pop", "relatedItem"], description="[emulator-fail:refinedFailed:pop]"
    )
    assert wait_for_statuses(hook, service_id, versions) == {"pop": "refinedFailed", "relatedItem": "completed"}


def test_unknown_service_and_duplicate_names(hook: AitemsHook) -> None:
    with pytest.raises(NotFoundError, match="HTTP 404"):
        hook.list_trainings("nosuchservice")
    hook.create_service("shop_3")
    with pytest.raises(BadRequestError, match="already exists"):
        hook.create_service("shop_3")
