"""Fixtures of the emulator tests (helpers live in ``emulator_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_support import CHURN_CONFIG, AitemsClient, PredoneClient, write_churn_csv, write_column_info

from airflow_provider_predone.emulator import EmulatorProcess


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data files shared by the tests (never modified)."""
    root = tmp_path_factory.mktemp("emulator-data")
    return {
        "learn": write_churn_csv(root / "learn.csv", 600, seed=1),
        "eval": write_churn_csv(root / "eval.csv", 200, seed=2),
        "retrain": write_churn_csv(root / "retrain.csv", 600, seed=3, drift=1.0, bom=True),
        "retrain_eval": write_churn_csv(root / "retrain_eval.csv", 200, seed=4, drift=1.0),
        "column_info": write_column_info(root / "column_info.csv"),
    }


@pytest.fixture
def predone(emulator: EmulatorProcess) -> PredoneClient:
    return PredoneClient(emulator.url)


@pytest.fixture
def trained(predone: PredoneClient, data: dict[str, Path]) -> tuple[str, int]:
    """A train key and a model trained on the churn data (finished)."""
    key = predone.key()
    assert predone.train(key, data["learn"], CHURN_CONFIG)["status"] == "finished"
    return key, predone.newest_model_id(key)


@pytest.fixture
def aitems(emulator: EmulatorProcess) -> AitemsClient:
    return AitemsClient(emulator.url)


@pytest.fixture
def fresh_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    """Start extra emulator processes with given options (test controls on); all are stopped after the test."""
    started: list[EmulatorProcess] = []

    def start(**options: Any) -> EmulatorProcess:
        process = EmulatorProcess(**{"test_controls": True, **options}).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
