"""The event loop of batch scoring and the emulator: uvloop when installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from airflow_provider_predone import _event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_loop_when_installed() -> None:
    pytest.importorskip("uvloop", reason="uvloop comes with Airflow 3 (uvicorn[standard]) except on Windows/PyPy")
    assert _event_loop.run(_loop_module()).startswith("uvloop")


def test_asyncio_runs_it_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert _event_loop.run(_loop_module()).startswith("asyncio")
