"""Operators read inputs from and write results to object storage through ObjectStoragePath.

``memory://`` is fsspec's in-process filesystem, attached for the test: the bytes still go
through ObjectStoragePath streams, and dag.test() runs the tasks in this process.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from helpers import DAGS, DATA, run_dag

from airflow_provider_predone.emulator import EmulatorProcess


def test_object_storage_inputs_and_outputs(connections: EmulatorProcess, airflow_db) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    for name in ("train.csv", "eval.csv", "score.csv", "new_month.csv", "new_month_eval.csv"):
        ObjectStoragePath(f"memory://bucket/in/{name}").write_bytes((DATA / name).read_bytes())

    result = run_dag(DAGS, "predone_object_storage")
    assert set(result.states.values()) == {"success"}, result.states
    # As ObjectStoragePath spells it: universal_pathlib 0.2 writes "memory:///bucket/...".
    assert result.xcom("score")["output_data"] == str(ObjectStoragePath("memory://bucket/out/predictions.csv"))
    rows = list(csv.DictReader(io.StringIO(ObjectStoragePath("memory://bucket/out/predictions.csv").read_text())))
    assert len(rows) == 500
    assert ObjectStoragePath("memory://bucket/out/predictions_reasons.csv").exists()
    state = connections.state()
    expected = sum((DATA / n).stat().st_size for n in ("train.csv", "eval.csv"))
    assert state["bytes_uploaded"] > expected  # training files, then the retraining zip
    assert state["retrain_jobs_started"] == 1


def test_an_object_storage_path_object_is_accepted(connections: EmulatorProcess) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_predone import files
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    attach(protocol="memory", fs=MemoryFileSystem())
    path = ObjectStoragePath("memory://bucket/objects/train.csv")
    path.write_bytes((DATA / "train.csv").read_bytes())
    source = files.resolve("train_data", path)
    assert files.read_csv_header(source)[-1] == "purchased_premium"
    hook = PredictionOneHook()
    sent = hook.upload(hook.get_upload_urls().learn_data_set_upload_url, source, label="object")
    assert sent == connections.state()["bytes_uploaded"] == (DATA / "train.csv").stat().st_size


@pytest.mark.parametrize("where", ["local", "object storage"])
def test_a_failed_write_leaves_the_previous_result_and_no_part(where: str, tmp_path: Path) -> None:
    """An object store's stream writes what it holds when it closes, failure or not: written
    directly, a run that failed half-way would leave half a CSV that looks whole."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_predone import files

    attach(protocol="memory", fs=MemoryFileSystem())
    location = (
        tmp_path / "scores.csv" if where == "local" else ObjectStoragePath("memory://failed-write/out/scores.csv")
    )
    location.write_bytes(b"row_number,prediction\n1,yes\n")

    def fail_half_way() -> None:
        with files.open_for_writing(location) as stream:
            stream.write(b"row_number,prediction\n1,no\n")
            raise RuntimeError("row 2 failed")

    with pytest.raises(RuntimeError, match="row 2 failed"):
        fail_half_way()
    assert location.read_bytes() == b"row_number,prediction\n1,yes\n"
    assert [p.name for p in location.parent.iterdir()] == ["scores.csv"]

    with files.open_for_writing(location) as stream:
        stream.write(b"row_number,prediction\n1,no\n2,yes\n")
    assert location.read_bytes() == b"row_number,prediction\n1,no\n2,yes\n"
    assert [p.name for p in location.parent.iterdir()] == ["scores.csv"]
