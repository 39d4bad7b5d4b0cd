"""
The one retry policy: every attempt of every call, sync and async, the first included, runs
under it (``hooks._http.RetryPolicy`` through tenacity), and it decides alike for both.

Over real HTTP to the crafted server of ``tests/reliability`` (127.0.0.1), through the
transports the hooks and triggers use.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
import tenacity
from aiohttp import web
from reliability.test_hostile_responses import HostileServer

from airflow_provider_predone.exceptions import ApiError, TransientApiError
from airflow_provider_predone.hooks._http import (
    AsyncTransport,
    RetryPolicy,
    SyncTransport,
    deadline_scope,
    retry_policy,
    shared_session,
)
from airflow_provider_predone.hooks.connection import HttpSettings
from airflow_provider_predone.protocol import predone as api

STATUS_PATH = "/v1/external/models/results"
HEADERS = {"x-api-key": "retry-test-key"}
LOG = logging.getLogger("predone.test.retries")
RUNNING = b'{"status": "running"}'


class Script:
    """Answers the status route with the next of ``answers`` (status, body, headers) and counts requests."""

    def __init__(self, *answers: tuple[int, bytes, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.requests = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        status, body, headers = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        return web.Response(status=status, body=body, headers={"Content-Type": "application/json", **headers})


def ok() -> tuple[int, bytes, dict[str, str]]:
    return 200, RUNNING, {}


def unavailable(retry_after: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    return 503, b'{"message": "busy"}', {"Retry-After": retry_after} if retry_after else {}


@pytest.fixture
def server() -> Iterator[HostileServer]:
    yield from HostileServer().serve()


def settings(url: str, **changes: Any) -> HttpSettings:
    values: dict[str, Any] = {"max_retries": 3, "retry_wait": 0.01, "retry_max_wait": 0.05, "timeout": 5.0}
    return HttpSettings(base_url=f"{url}/v1/external", conn_id="retry_test", **{**values, **changes})


def send(kind: str, config: HttpSettings, deadline: float | None = None) -> Any:
    """One Train Status Check through the sync or the async transport."""
    request = api.get_train_status("p-1")
    if kind == "sync":
        transport = SyncTransport(config, api.map_error, LOG)
        try:
            with deadline_scope(deadline):
                return transport.send(request, HEADERS)
        finally:
            transport.close()

    async def run() -> Any:
        async with shared_session("retry_test") as session:
            with deadline_scope(deadline):
                return await AsyncTransport(config, api.map_error, session, LOG).send(request, HEADERS)

    return asyncio.run(run())


class TenacityOutcomes:
    """
    Counts the outcomes tenacity records (``RetryCallState.set_result`` / ``set_exception``) in
    this thread, by profiling calls: one per attempt made under a policy, none for an attempt
    made around it.
    """

    WATCHED = {tenacity.RetryCallState.set_result.__code__, tenacity.RetryCallState.set_exception.__code__}

    def __init__(self) -> None:
        self.count = 0

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in self.WATCHED:
            self.count += 1

    def __enter__(self) -> TenacityOutcomes:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("answers", [(ok(),), (unavailable(), unavailable(), ok())], ids=["first", "third"])
def test_every_attempt_runs_under_the_policy(
    server: HostileServer, kind: str, answers: tuple[tuple[int, bytes, dict[str, str]], ...]
) -> None:
    """The async transport used to send its first attempt around tenacity (and replay a failure into it)."""
    script = Script(*answers)
    server.routes[STATUS_PATH] = script
    with TenacityOutcomes() as outcomes:
        status = send(kind, settings(server.url))
    assert status.status == "running"
    assert script.requests == len(answers)
    assert outcomes.count == script.requests  # each attempt's outcome was the policy's to judge


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_transient_failure_is_retried_and_logged(
    server: HostileServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(unavailable(), ok())
    server.routes[STATUS_PATH] = script
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert send(kind, settings(server.url)).status == "running"
    assert script.requests == 2
    lines = [r.getMessage() for r in caplog.records if r.name == LOG.name]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Train Status Check")
    assert "attempt 1 failed (TransientApiError:" in lines[0]
    assert "retrying in" in lines[0]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_max_retries_zero_makes_one_attempt(server: HostileServer, kind: str) -> None:
    script = Script(unavailable())
    server.routes[STATUS_PATH] = script
    with pytest.raises(TransientApiError):
        send(kind, settings(server.url, max_retries=0))
    assert script.requests == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_permanent_failure_is_not_retried(server: HostileServer, kind: str) -> None:
    script = Script((400, b'{"message": "bad request"}', {}))
    server.routes[STATUS_PATH] = script
    with pytest.raises(ApiError) as raised:
        send(kind, settings(server.url))
    assert not raised.value.transient
    assert script.requests == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_retry_after_is_honoured_up_to_retry_max_wait(server: HostileServer, kind: str) -> None:
    """A server asking for an hour gets ``retry_max_wait`` (0.05 s here): it cannot park a worker."""
    script = Script(unavailable("3600"), ok())
    server.routes[STATUS_PATH] = script
    started = time.monotonic()
    assert send(kind, settings(server.url)).status == "running"
    assert script.requests == 2
    assert time.monotonic() - started < 30  # bounded by retry_max_wait, not by the hour asked for


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_no_retry_waits_past_the_deadline_of_the_scope(server: HostileServer, kind: str) -> None:
    """Within a trigger's deadline_scope, a retry whose wait would reach the deadline is not made."""
    script = Script(unavailable("3600"), ok())
    server.routes[STATUS_PATH] = script
    with pytest.raises(TransientApiError):
        send(kind, settings(server.url, retry_max_wait=60.0), deadline=time.time() + 5)
    assert script.requests == 1


def test_the_policy_decides_waits_and_stops_from_its_settings() -> None:
    """The policy's parts as tenacity sees them, without a server: the numbers it derives."""
    config = HttpSettings(base_url="http://127.0.0.1:1", conn_id="c", max_retries=2, retry_wait=1.0, retry_max_wait=4.0)
    policy = RetryPolicy(config)

    def state(attempt: int, exc: BaseException) -> tenacity.RetryCallState:
        retrying = tenacity.Retrying()
        current = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        current.attempt_number = attempt
        current.set_exception((type(exc), exc, None))
        return current

    busy = TransientApiError("busy", retry_after=3.5)
    assert 3.5 <= policy.wait(state(1, busy)) <= 4.0  # at least Retry-After, never past retry_max_wait
    assert policy.wait(state(1, TransientApiError("busy", retry_after=99.0))) == 4.0
    assert not policy.stop(state(2, busy))
    assert policy.stop(state(3, busy))  # max_retries=2: the third failure is the last
    with deadline_scope(time.time() + 1.0):
        assert policy.stop(state(1, busy))  # 3.5 s wanted, 1 s left
        assert policy.wait(state(1, busy)) <= 1.0
    assert not RetryPolicy(config, deadline=time.time() + 60).stop(state(1, busy))
    # The dict form other code hands to tenacity is the same policy.
    kwargs: dict[str, Callable[..., Any] | bool | None] = retry_policy(config)
    assert kwargs["reraise"] is True
    assert set(kwargs) == {"stop", "wait", "retry", "reraise", "before_sleep"}


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The types of the objects the block leaves to the cyclic garbage collector (found on exit)."""
    gc.collect()
    gc.disable()
    found: list[str] = []
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found += sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage})
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_call_leaves_nothing_to_the_cyclic_garbage_collector(server: HostileServer, kind: str) -> None:
    """
    Reference cycles cost a triggerer collections in a heap of thousands of triggers: tenacity's
    AsyncRetrying left 32 objects a call, Retrying's call form (the sync side's) 26.
    """
    server.routes[STATUS_PATH] = Script(ok())
    config = settings(server.url)
    request = api.get_train_status("p-1")
    if kind == "sync":
        transport = SyncTransport(config, api.map_error, LOG)
        try:
            transport.send(request, HEADERS)  # first-use set-up (the session) is not what is counted
            with cyclic_garbage() as found:
                for _ in range(50):
                    transport.send(request, HEADERS)
        finally:
            transport.close()
        assert found == []
        return

    async def run() -> list[str]:
        async with shared_session("retry_test") as session:
            transport = AsyncTransport(config, api.map_error, session, LOG)
            await transport.send(request, HEADERS)
            with cyclic_garbage() as found:
                for _ in range(50):
                    await transport.send(request, HEADERS)
            return found

    assert asyncio.run(run()) == []


def test_a_cancelled_async_call_is_not_retried(server: HostileServer) -> None:
    """A trigger cancelled mid-request (moved to another triggerer) stops there: no retry, no wait."""
    requests = 0
    arrived = threading.Event()  # set in the server's thread

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal requests
        requests += 1
        arrived.set()
        await asyncio.sleep(5)
        return web.Response(status=200, body=RUNNING, content_type="application/json")

    server.routes[STATUS_PATH] = slow

    async def run() -> None:
        async with shared_session("retry_test") as session:
            transport = AsyncTransport(settings(server.url), api.map_error, session, LOG)
            task = asyncio.ensure_future(transport.send(api.get_train_status("p-1"), HEADERS))
            assert await asyncio.to_thread(arrived.wait, 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())
    assert requests == 1
