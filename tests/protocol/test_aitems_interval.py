"""AiTEMS interval services: the update cycle, cycle training (its signed query), incremental rows
and the update history — request descriptions, and the hook against the emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from aitems_interval import IntervalService, interval_service, pushed, wait_until
from helpers import AITEMS_ACCESS_KEY, AITEMS_SECRET_KEY

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import BadRequestError, InvalidInputError, NotFoundError, RowsInDoubtError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import ApiRequest, Phase

SERVICE = "abcdefgh123"
ROW = {"USER_ID": "u1", "ITEM_ID": "i2", "TIMESTAMP": 1764547200}


def rows(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"USER_ID": f"u{n % 3 + 1}", "ITEM_ID": f"i{n}", "TIMESTAMP": 1764547200 + n}
        for n in range(start, start + count)
    ]


# --- request descriptions -------------------------------------------------------------------------


def test_the_schedule_action_is_in_the_query_that_gets_signed() -> None:
    start = api.schedule(SERVICE, "start", ["pop"], {"item_top_n": "2000"}, "nightly")
    assert (start.method, start.target) == ("PUT", f"/services/{SERVICE}/schedule?action=start")
    assert start.json == {
        "trainTypes": ["pop"],
        "hpConfig": {"is_enabled": False, "item_top_n": 2000},
        "description": "nightly",
    }
    assert not start.idempotent
    stop = api.schedule(SERVICE, "stop")
    assert (stop.target, stop.json) == (f"/services/{SERVICE}/schedule?action=stop", None)


def test_interval_push_and_updates_requests() -> None:
    interval = api.set_interval(SERVICE, "hour3")
    assert (interval.method, interval.target, interval.json) == (
        "PUT",
        f"/services/{SERVICE}/interval",
        {"term": "hour3"},
    )
    push = api.push_rows(SERVICE, "ds1", "interaction", [ROW])
    assert (push.method, push.target, push.json) == (
        "POST",
        f"/services/{SERVICE}/datasets/ds1",
        {"type": "interaction", "value": [ROW]},
    )
    assert not push.idempotent
    assert push.parse(True) is None
    updates = api.list_updates(SERVICE, "pop", "v1")
    assert updates.target == f"/services/{SERVICE}/updates?type=pop&trainVersion=v1"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: api.set_interval(SERVICE, "hour2"),
            "term must be one of ['hour1', 'hour3', 'hour6', 'hour12'], got 'hour2'",
        ),
        (lambda: api.schedule(SERVICE, "pause"), "action must be one of ['start', 'stop']"),
        (lambda: api.schedule(SERVICE, "start", ["weekly"]), "train_types: ['weekly'] not allowed"),
        (
            lambda: api.schedule(SERVICE, "start", ["pop"], {"item_top_n": 5}),
            "hp_config.item_top_n must be an integer from 1000",
        ),
        (lambda: api.set_interval("shop_nightly", "hour1"), "looks like a service name"),
        (lambda: api.push_rows(SERVICE, "ds1", "interaction", []), "rows must be a non-empty list"),
        (
            lambda: api.push_rows(SERVICE, "ds1", "interaction", [{"USER_ID": "u", "ITEM_ID": "i"}]),
            "rows[0]: the interaction row needs the column 'TIMESTAMP'",
        ),
        (
            lambda: api.push_rows(SERVICE, "ds1", "interaction", [{**ROW, "TIMESTAMP": "17"}]),
            "rows[0]: TIMESTAMP must be an integer",
        ),
        (
            lambda: api.push_rows(SERVICE, "ds1", "user", [{"user_id": "u1"}]),
            "'user_id' differs: column names are case-sensitive",
        ),
        (lambda: api.push_rows(SERVICE, "ds1", "users", [ROW]), "dataset_type must be one of"),
        (lambda: api.push_rows(SERVICE, "../ds", "user", [ROW]), "dataset_id must be"),
        (
            lambda: api.push_rows(SERVICE, "ds1", "item", [{"ITEM_ID": "i"}] * (api.MAX_PUSH_ROWS + 1)),
            "at most 10000 rows",
        ),
        (lambda: api.list_updates(SERVICE, "daily", "v1"), "train_type must be one of"),
        (lambda: api.validate_batch_size(0), "batch_size must be an integer from 1 to 10000"),
    ],
)
def test_bad_input_is_refused_before_sending(call, message) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        call()


def test_a_push_answer_other_than_true_is_refused() -> None:
    with pytest.raises(TypeError):
        api.push_rows(SERVICE, "ds1", "interaction", [ROW]).parse({"result": "ok"})


def test_update_statuses() -> None:
    sets = api.UPDATE_STATUSES
    assert sets.classify("completed") is Phase.SUCCESS
    assert sets.classify("updating") is Phase.RUNNING  # the one status NAVER's reference shows
    assert sets.classify(api.UPDATE_NOT_LISTED) is Phase.RUNNING
    assert sets.classify("updateFailed") is Phase.FAILURE


def test_find_update_takes_the_named_or_the_newest() -> None:
    updates = [
        {"updateVersion": "2", "createdDate": "2026-12-01T10:00:00.000"},
        {"updateVersion": "1", "createdDate": "2026-12-01T09:00:00.000"},
    ]
    assert api.find_update(updates, None) == updates[0]
    assert api.find_update(updates, "1") == updates[1]
    assert api.find_update(updates, "3") is None


# --- against the emulator ---------------------------------------------------------------------------


@pytest.fixture
def service(connections: EmulatorProcess, bucket: str, tmp_path: Path) -> IntervalService:
    return interval_service(AitemsHook(), bucket, tmp_path)


def test_cycle_training_starts_pushes_update_and_stops(connections: EmulatorProcess, service: IntervalService) -> None:
    hook = AitemsHook()
    hook.set_interval(service.service_id, "hour1")
    assert hook.get_service(service.service_id)["learningInterval"] == "hour1"
    hook.start_schedule(service.service_id, ["pop", "personalRecommend"], hp_config={"is_enabled": False})
    assert hook.get_service(service.service_id)["status"] in api.SCHEDULED_SERVICE_STATUSES
    assert connections.state()["aitems_trainings_started"] == 2

    interactions = service.dataset_ids["interaction"]
    hook.push_rows(service.service_id, interactions, "interaction", rows(5))
    hook.push_rows(service.service_id, interactions, "interaction", rows(3, start=5))
    assert pushed(connections.url, service.service_id, interactions)["batches"] == [5, 3]

    (update,) = hook.list_updates(service.service_id, train_type="pop")
    assert update["status"] in ("ready", "updating")
    assert update["updateResult"]["inputRowsCnt"] == 8  # both pushes joined the open update
    done = wait_until(
        "a completed update",
        lambda: hook.list_updates(service.service_id, train_type="pop")[0]["status"] == "completed",
    )
    assert done
    assert {u["type"] for u in hook.list_updates(service.service_id)} == {"pop", "personalRecommend"}

    hook.stop_schedule(service.service_id)
    assert hook.get_service(service.service_id)["status"] not in api.SCHEDULED_SERVICE_STATUSES


def test_the_emulator_checks_the_signature_over_the_query(
    connections: EmulatorProcess, service: IntervalService
) -> None:
    hook = AitemsHook()
    hook.set_interval(service.service_id, "hour6")
    request = api.schedule(service.service_id, "start", ["pop"])
    url = f"{connections.url}/api/v1{request.target}"
    # Signed over the path alone, as a client that drops the query from the signature would.
    wrong = api.signed_headers("PUT", f"{connections.url}/api/v1{request.path}", AITEMS_ACCESS_KEY, AITEMS_SECRET_KEY)
    refused = requests.put(url, data=request.body(), headers={**wrong, "Content-Type": "application/json"}, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["errorCode"] == "200"
    assert hook.get_service(service.service_id)["status"] == "learnable"
    hook.start_schedule(service.service_id, ["pop"])  # the hook signs path and query
    assert hook.get_service(service.service_id)["status"] in api.SCHEDULED_SERVICE_STATUSES


def test_naver_rules_for_interval_services(connections: EmulatorProcess, service: IntervalService) -> None:
    hook = AitemsHook()
    batch = str(hook.create_service("shop_batch")["serviceId"])
    with pytest.raises(BadRequestError, match="only for interval services"):
        hook.set_interval(batch, "hour1")
    with pytest.raises(BadRequestError, match="only for interval services"):
        hook.push_rows(batch, service.dataset_ids["interaction"], "interaction", rows(1))
    with pytest.raises(BadRequestError, match="set the update cycle"):
        hook.start_schedule(service.service_id, ["pop"])
    with pytest.raises(NotFoundError, match="dataset"):
        hook.push_rows(service.service_id, "nosuchdataset", "interaction", rows(1))
    with pytest.raises(BadRequestError, match="type must be the dataset's type, interaction"):
        hook.push_rows(service.service_id, service.dataset_ids["interaction"], "item", [{"ITEM_ID": "i9"}])
    # Rows the client would refuse, sent as they are: the service refuses them too.
    bad = ApiRequest(
        "Push rows",
        "POST",
        f"/services/{service.service_id}/datasets/{service.dataset_ids['interaction']}",
        lambda payload: payload,
        json={"type": "interaction", "value": [{"USER_ID": "u1", "ITEM_ID": "i1"}]},
    )
    with pytest.raises(BadRequestError, match="lacks a valid TIMESTAMP"):
        hook.call(bad)
    hook.set_interval(service.service_id, "hour12")
    hook.start_schedule(service.service_id, ["pop"])
    with pytest.raises(BadRequestError, match="already started"):
        hook.call(api.schedule(service.service_id, "start", ["pop"]), reconcile=lambda: None)
    assert pushed(connections.url, service.service_id, service.dataset_ids["interaction"])["batches"] == []


def test_a_refused_push_is_resent_and_lands_once(connections: EmulatorProcess, service: IntervalService) -> None:
    hook = AitemsHook()
    interactions = service.dataset_ids["interaction"]
    connections.configure(fault_rate=0.5, fault_kinds="http_500,http_503,http_429", fault_seed=3)
    for batch in range(10):
        hook.push_rows(service.service_id, interactions, "interaction", rows(4, start=batch * 4))
    faults = connections.state()["faults"]
    connections.configure(fault_rate=0.0)
    received = pushed(connections.url, service.service_id, interactions)
    assert received["batches"] == [4] * 10
    assert received["repeated_count"] == 0
    assert sum(faults.values()) > 0  # answers did refuse pushes


@pytest.mark.parametrize("kind", ["lost", "reset"])
def test_a_push_without_an_answer_is_in_doubt_and_not_resent(
    connections: EmulatorProcess, service: IntervalService, kind: str
) -> None:
    hook = AitemsHook()
    interactions = service.dataset_ids["interaction"]
    connections.configure(fault_rate=1.0, fault_kinds=kind)
    started = time.monotonic()
    with pytest.raises(RowsInDoubtError, match="3 rows were sent but no answer said whether they were added") as raised:
        hook.push_rows(service.service_id, interactions, "interaction", rows(3))
    connections.configure(fault_rate=0.0)
    assert "on_batch_in_doubt" in str(raised.value)  # what to do about it
    assert time.monotonic() - started < 10
    # Sent once: 'lost' applied it (its answer was dropped), 'reset' did not; neither was sent again.
    assert pushed(connections.url, service.service_id, interactions)["batches"] == ([3] if kind == "lost" else [])


# --- crafted answers --------------------------------------------------------------------------------


@pytest.fixture
def crafted(monkeypatch: pytest.MonkeyPatch):
    """A crafted-answer server (tests/reliability's HostileServer) behind ``aitems_default``."""
    from helpers import aitems_connection
    from reliability.test_hostile_responses import HostileServer

    server = HostileServer()
    for running in server.serve():
        quick = {"max_retries": 2, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 2}
        monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(running.url, **quick))
        yield running


PUSH_PATH = f"/api/v1/services/{SERVICE}/datasets/ds1"


def counting(*answers: tuple[int, bytes]):
    """A handler giving ``answers`` in turn (the last one again), counting the calls."""
    from aiohttp import web

    calls: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        status, body = answers[min(len(calls), len(answers) - 1)]
        calls.append(status)
        return web.Response(status=status, body=body, content_type="application/json")

    return handler, calls


GATEWAY_429 = b'{"error": {"errorCode": "410", "message": "Throttle Limited"}}'


@pytest.mark.parametrize(
    ("answers", "outcome", "sent"),
    [
        ([(429, GATEWAY_429), (200, b"true")], None, 2),  # refused by the gateway: sent again
        ([(503, b'{"error": {"errorCode": "500", "message": "Endpoint Error"}}'), (200, b"true")], None, 2),
        ([(200, b'{"result": "ok"}')], RowsInDoubtError, 1),  # an answer that is not `true`
        ([(200, b"tru")], RowsInDoubtError, 1),  # cut short
        ([(502, b"<html>Bad Gateway</html>")], RowsInDoubtError, 1),  # the gateway lost the answer
        ([(504, b'{"error": {"errorCode": "510", "message": "Endpoint Timeout"}}')], RowsInDoubtError, 1),
        ([(400, b'{"error": {"errorCode": "100", "message": "Bad Request"}}')], BadRequestError, 1),
        ([(413, b'{"error": {"errorCode": "430", "message": "Request Entity Too Large"}}')], BadRequestError, 1),
    ],
)
def test_which_failed_pushes_are_sent_again(crafted, answers, outcome, sent) -> None:
    handler, calls = counting(*answers)
    crafted.routes[PUSH_PATH] = handler
    hook = AitemsHook()
    if outcome is None:
        hook.push_rows(SERVICE, "ds1", "interaction", [ROW])
    else:
        with pytest.raises(outcome):
            hook.push_rows(SERVICE, "ds1", "interaction", [ROW])
    assert len(calls) == sent
