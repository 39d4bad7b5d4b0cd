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

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="predone-test-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

from airflow_provider_predone.emulator import EmulatorProcess  # noqa: E402

# Short jobs keep the suite fast; the lifecycle is the same as with the defaults.
EMULATOR_OPTIONS = {"job_seconds": 1.0, "build_seconds": 0.5}


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[EmulatorProcess]:
    """One real emulator server process for the session (tests reset it, see ``emulator``)."""
    with EmulatorProcess(**EMULATOR_OPTIONS) as process:
        yield process


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The session's emulator, reset to an empty state and default config for this test."""
    emulator_process.reset()
    emulator_process.configure(fault_rate=0.0, inference_latency_ms=0, **EMULATOR_OPTIONS)
    return emulator_process
