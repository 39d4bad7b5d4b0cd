"""Test set-up shared by the whole suite.

Airflow reads its configuration at import time, so the environment is prepared here, before
any test module imports Airflow: a throw-away AIRFLOW_HOME with a sqlite database, the
example DAGs as the DAGs folder, and no Airflow examples.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    EMULATOR_OPTIONS,
    airflow_home_environment,
    aitems_connection,
    alarm_restored,
    predone_connection,
)

os.environ.update(airflow_home_environment(Path(tempfile.mkdtemp(prefix="predone-test-airflow-home-"))))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

from object_storage import ObjectStorageServer

from airflow_provider_predone.emulator import EmulatorProcess


@pytest.fixture(scope="session")
def object_storage_server() -> Iterator[ObjectStorageServer]:
    """One real S3-compatible server (moto's, a subprocess on 127.0.0.1) for the session."""
    with ObjectStorageServer() as server:
        yield server


@pytest.fixture
def bucket(object_storage_server: ObjectStorageServer) -> str:
    """A fresh, empty bucket of the session's object storage server."""
    return object_storage_server.create_bucket()


@pytest.fixture(scope="session")
def emulator_process(object_storage_server: ObjectStorageServer) -> Iterator[EmulatorProcess]:
    """One real emulator server process for the session (tests reset it, see ``emulator``)."""
    with EmulatorProcess(
        test_controls=True, object_storage_endpoint=object_storage_server.endpoint, **EMULATOR_OPTIONS
    ) as process:
        yield process


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The session's emulator, reset to an empty state and default config for this test."""
    emulator_process.reset()
    # Every fault setting a test may change, back to the defaults: a test that drew only some
    # kinds of fault (fault_kinds) changed which fault a later test's seed draws first.
    emulator_process.configure(
        fault_rate=0.0, fault_kinds="", fault_seed=0, slow_seconds=35.0, inference_latency_ms=0, **EMULATOR_OPTIONS
    )
    return emulator_process


@pytest.fixture
def connections(
    emulator: EmulatorProcess, object_storage_server: ObjectStorageServer, monkeypatch: pytest.MonkeyPatch
) -> EmulatorProcess:
    """
    ``predone_default`` and ``aitems_default`` point at the (reset) emulator, ``aitems_default``'s
    object storage at the session's server; no cached API keys.
    """
    from airflow_provider_predone.hooks.predone import API_KEYS

    API_KEYS.clear()
    # Fast retries: the suite exercises retry paths, not the production backoff.
    fast = {"retry_wait_seconds": 0.05, "retry_max_wait_seconds": 0.5}
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator.url, **fast))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AITEMS_DEFAULT",
        aitems_connection(emulator.url, object_storage_endpoint=object_storage_server.endpoint, **fast),
    )
    return emulator


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata database (for ``dag.test()``, Variables, the CLI)."""
    from airflow.utils import db

    with alarm_restored():  # the migrations run under an alarm of Airflow's own
        db.resetdb()
