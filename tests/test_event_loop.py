"""The event loop of batch scoring, waits on a worker and the emulator: uvloop when installed,
asyncio's otherwise, and on either an exception from a signal handler ends the run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest
from helpers import alarm_restored

from airflow_provider_predone import _event_loop


class Timeout(Exception):
    """What Airflow's execution_timeout handler raises (AirflowTaskTimeout), without Airflow."""


def _raise_timeout(signum: int, frame: object) -> None:
    raise Timeout


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop comes with Airflow 3 (uvicorn[standard]) except on Windows/PyPy")
    else:
        monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    return request.param


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_loop_is_uvloop_when_installed_else_asyncio(loop_kind: str) -> None:
    assert _event_loop.run(_loop_module()).startswith(loop_kind)


def test_a_signal_handlers_exception_ends_the_run_after_its_clean_up(loop_kind: str) -> None:
    """The alarm rings while a plain callback holds the thread (as a socket read does). Run
    by the loop, the handler's exception was logged as "Exception in callback" and the
    coroutine ran to its end."""
    cleaned_up = []

    async def main() -> str:
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            await asyncio.sleep(3)
        finally:
            cleaned_up.append(True)
        return "ran to the end"

    with alarm_restored():
        signal.signal(signal.SIGALRM, _raise_timeout)
        with pytest.raises(Timeout):
            _event_loop.run(main())
        assert signal.getsignal(signal.SIGALRM) is _raise_timeout  # the caller's handler is back
    assert cleaned_up == [True]


def test_a_handler_that_returns_leaves_the_run_going(loop_kind: str) -> None:
    """Airflow's SIGTERM handler calls the operator's on_kill and returns."""
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:

        async def main() -> str:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.2)
            return "done"

        assert _event_loop.run(main()) == "done"
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]
