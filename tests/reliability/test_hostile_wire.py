"""
What a broken or hostile server can do on the wire, short of the content of its answers:
endless or huge bodies, a ``Retry-After`` of years or of ``inf``, a body trickled a byte at a
time, JSON nested past the parser's recursion limit, URLs that are not http(s), and a plain
``http://`` URL offered for a call that carries a key. One bad answer must cost one call at
most: bounded memory, bounded time, a typed error naming the operation.

Served over real HTTP by the crafted server of ``test_hostile_responses`` on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import predone_connection
from test_hostile_responses import SIGNATURE, Handler, HostileServer

from airflow_provider_predone.exceptions import TransientApiError, UnexpectedResponseError
from airflow_provider_predone.hooks._http import SyncTransport
from airflow_provider_predone.hooks.connection import HttpSettings
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

MiB = 1024 * 1024
MODELS = "/v1/external/models"
STATUS = "/v1/external/models/results"


QUICK = {"max_retries": 1, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 5}


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """The crafted server as ``predone_default`` (one quick retry unless :func:`reconnect` says otherwise)."""
    server = HostileServer()
    for running in server.serve():
        monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(running.url, **QUICK))
        API_KEYS.clear()
        yield running
        API_KEYS.clear()


def reconnect(server: HostileServer, monkeypatch: pytest.MonkeyPatch, **extra: object) -> None:
    """Point ``predone_default`` at ``server`` with these extras over the quick defaults."""
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(server.url, **{**QUICK, **extra}))


def endless(chunk: bytes = b"[" + b" " * (64 * 1024 - 1), *, total: int | None = None, status: int = 200) -> Handler:
    """A chunked body with no length: for ever, or ``total`` bytes."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = 0
        while total is None or sent < total:
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
        return response

    return handler


def announcing(length: int) -> Handler:
    """Announces ``length`` bytes, sends one MiB, then holds the connection open."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(length)})
        await response.prepare(request)
        await response.write(b" " * MiB)
        await asyncio.sleep(30)
        return response

    return handler


def trickling(body: bytes, every: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        await response.prepare(request)
        for i in range(len(body)):
            await response.write(body[i : i + 1])
            await asyncio.sleep(every)
        return response

    return handler


def counted(handler: Handler, calls: list[float]) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        calls.append(time.monotonic())
        return await handler(request)

    return wrapper


def finishes_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; fail the test if it is still running after ``seconds``."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome[0]


# --- memory: what is read of an answer is capped --------------------------------------------------


def test_an_endless_api_answer_is_cut_at_the_cap_with_flat_memory(hostile: HostileServer) -> None:
    hostile.routes[MODELS] = endless(total=64 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(UnexpectedResponseError, match=r"List Models \(GET /models\).*larger than 4194304 bytes"):
            list(PredictionOneHook().list_models())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"peak {peak / MiB:.0f} MiB while reading a 64 MiB answer"


def test_the_cap_is_a_connection_extra(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    reconnect(hostile, monkeypatch, max_answer_bytes=1024)
    hostile.routes[MODELS] = HostileServer.answering(200, b'{"models": [], "pad": "' + b"x" * 4096 + b'"}')
    with pytest.raises(UnexpectedResponseError, match=r"larger than 1024 bytes.*max_answer_bytes"):
        list(PredictionOneHook().list_models())


def test_a_content_length_above_the_cap_is_refused_before_reading(hostile: HostileServer) -> None:
    hostile.routes[MODELS] = announcing(10 * 1024 * MiB)
    started = time.monotonic()
    with pytest.raises(UnexpectedResponseError, match="larger than"):
        list(PredictionOneHook().list_models())
    assert time.monotonic() - started < 3  # not read until the server stops holding


async def test_the_triggers_async_client_caps_answers_too(hostile: HostileServer) -> None:
    hostile.routes[STATUS] = endless(total=64 * MiB)
    tracemalloc.start()
    try:
        async with PredictionOneHook().async_client() as client:
            with pytest.raises(UnexpectedResponseError, match=r"Train Status Check.*larger than 4194304 bytes"):
                await client.call(api.get_train_status("p-1"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"peak {peak / MiB:.0f} MiB while reading a 64 MiB answer"


async def test_the_async_client_refuses_an_announced_length_above_the_cap(hostile: HostileServer) -> None:
    hostile.routes[STATUS] = announcing(10 * 1024 * MiB)
    started = time.monotonic()
    async with PredictionOneHook().async_client() as client:
        with pytest.raises(UnexpectedResponseError, match="larger than"):
            await client.call(api.get_train_status("p-1"))
    assert time.monotonic() - started < 3


def test_the_error_body_of_a_failed_download_is_read_only_in_part(hostile: HostileServer, tmp_path: Path) -> None:
    hostile.routes["/files/r.zip"] = endless(b"<Error>" + b"x" * (64 * 1024), total=64 * MiB, status=403)
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match="HTTP 403") as raised:
            PredictionOneHook().download(hostile.file_url("r.zip"), tmp_path / "r.zip", label="Result", max_bytes=MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert SIGNATURE not in str(raised.value)
    assert peak < 8 * MiB, f"peak {peak / MiB:.0f} MiB for a 64 MiB error body"


# --- time: Retry-After and trickled answers --------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["1000000000", "inf", "nan", "1e400"])
def test_retry_after_is_capped_by_the_connection(hostile: HostileServer, retry_after: str) -> None:
    calls: list[float] = []
    hostile.routes[MODELS] = counted(
        lambda request: _answer(503, b"busy", {"Retry-After": retry_after}),
        calls,
    )
    raised = finishes_within(10, lambda: list(PredictionOneHook().list_models()))
    assert isinstance(raised, TransientApiError), raised
    assert len(calls) == 2  # max_retries=1: the retry came, after at most retry_max_wait_seconds
    assert calls[1] - calls[0] < 2


async def _answer(status: int, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    return web.Response(status=status, body=body, headers=headers)


async def test_a_trigger_never_waits_past_its_deadline_for_a_retry_after(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection allows long waits; the server asks for years; the trigger has 2 s.
    reconnect(hostile, monkeypatch, max_retries=5, retry_max_wait_seconds=3600)
    hostile.routes[STATUS] = lambda request: _answer(503, b"busy", {"Retry-After": "1000000000"})
    trigger = PredictionOneTrainTrigger(
        external_process_id="p-1", conn_id="predone_default", poll_interval=0.5, timeout=2
    )
    started = time.monotonic()
    event = await asyncio.wait_for(trigger.poll(), 20)
    assert event.payload["status"] == "timeout"
    assert time.monotonic() - started < 6


def test_a_trickled_answer_is_bounded_by_the_timeout_as_a_whole(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconnect(hostile, monkeypatch, timeout=1, max_retries=0)
    hostile.routes[MODELS] = trickling(b'{"models": [], "metadata": {}}' + b" " * 40, every=0.3)
    started = time.monotonic()
    raised = finishes_within(15, lambda: list(PredictionOneHook().list_models()))
    assert isinstance(raised, TransientApiError), raised
    assert "took more than 1 s" in str(raised)
    assert time.monotonic() - started < 4  # one byte every 0.3 s for 70 bytes would be 21 s


# --- shape: nesting, URLs, keys ------------------------------------------------------------------

NESTED = b"[" * 200_000 + b"]" * 200_000


def test_json_nested_past_the_recursion_limit_is_a_typed_error(hostile: HostileServer) -> None:
    hostile.routes[MODELS] = HostileServer.answering(200, NESTED, "application/json")
    with pytest.raises(UnexpectedResponseError, match=r"List Models"):
        list(PredictionOneHook().list_models())


def test_a_deeply_nested_error_answer_is_still_retried_as_a_503(hostile: HostileServer) -> None:
    calls: list[float] = []
    hostile.routes[MODELS] = counted(HostileServer.answering(503, NESTED, "application/json"), calls)
    with pytest.raises(TransientApiError, match="HTTP 503"):
        list(PredictionOneHook().list_models())
    assert len(calls) == 2


async def test_a_trigger_turns_a_nested_answer_into_an_event(hostile: HostileServer) -> None:
    hostile.routes[STATUS] = HostileServer.answering(200, NESTED, "application/json")
    trigger = PredictionOneTrainTrigger(
        external_process_id="p-1", conn_id="predone_default", poll_interval=0.5, timeout=5
    )
    event = await asyncio.wait_for(trigger.poll(), 20)
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "UnexpectedResponseError"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/r.zip", "gopher://x/", "http:///nohost"])
def test_a_url_that_is_not_http_fails_at_once(hostile: HostileServer, tmp_path: Path, url: str) -> None:
    with pytest.raises(UnexpectedResponseError, match="not http\\(s\\)") as raised:
        PredictionOneHook().download(url, tmp_path / "r.zip", label="Result", max_bytes=MiB)
    assert not raised.value.transient
    assert list(tmp_path.iterdir()) == []


def test_a_key_is_never_sent_over_plain_http_when_the_connection_uses_https(hostile: HostileServer) -> None:
    seen: list[float] = []
    hostile.routes["/predict"] = counted(HostileServer.answering(200, b"{}", "application/json"), seen)
    settings = HttpSettings(base_url="https://vendor.invalid/v1/external", conn_id="predone_default", max_retries=0)
    transport = SyncTransport(settings, api.map_error, logging.getLogger(__name__))
    request = api.infer(f"{hostile.url}/predict", b"a,b\n1,2\n", api.InferenceOptions())
    with pytest.raises(UnexpectedResponseError, match=r"plain http:// URL.*not sent unencrypted"):
        transport.send(request, {"x-api-key": "inference-key"})
    assert seen == []  # refused before anything went out


def test_urllib3_debug_lines_never_carry_a_signature(
    hostile: HostileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile.routes["/files/r.zip"] = HostileServer.answering(200, b"PK\x05\x06" + b"\0" * 18, "application/zip")
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        PredictionOneHook().download(hostile.file_url("r.zip"), tmp_path / "r.zip", label="Result", max_bytes=MiB)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/files/r.zip" in line for line in lines)  # urllib3 did log the request
    assert not any(SIGNATURE in line for line in lines)
