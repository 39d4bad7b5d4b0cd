"""
``files.locations``: local files and object storage through one code path (their fsspec
filesystem), with the ``.part`` rule for outputs and no hook-level lineage of their own.

Object storage is fsspec's in-process ``memory://`` filesystem attached to Airflow (as in
``tests/operators/test_object_storage.py``): the bytes go through the same fsspec calls an
``s3://`` location's do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, airflow_home_environment

from airflow_provider_predone import files
from airflow_provider_predone.exceptions import InvalidInputError


@pytest.fixture
def memory() -> Any:
    """A fresh ``memory://`` object store attached to Airflow; answers ObjectStoragePath."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    store = MemoryFileSystem()
    store.store.clear()
    store.pseudo_dirs[:] = [""]
    attach(protocol="memory", fs=store)
    return ObjectStoragePath


def where(kind: str, tmp_path: Path, memory: Any, name: str) -> Any:
    return tmp_path / name if kind == "local" else memory(f"memory://bucket/{name}")


KINDS = ["local", "object storage"]


@pytest.mark.parametrize("kind", KINDS)
def test_one_code_path_reads_and_checks_both(kind: str, tmp_path: Path, memory: Any) -> None:
    location = where(kind, tmp_path, memory, "train.csv")
    location.write_bytes((DATA / "train.csv").read_bytes())
    fs, path = files.filesystem(location)
    assert fs.info(path)["size"] == (DATA / "train.csv").stat().st_size
    source = files.resolve("train_data", location if kind == "local" else str(location))
    assert source.size == (DATA / "train.csv").stat().st_size
    assert str(source) == str(location)  # errors, logs and lineage name it as the user did
    assert files.read_csv_header(source)[-1] == "purchased_premium"
    with source.open() as stream:
        assert stream.read() == (DATA / "train.csv").read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_are_named_before_anything_is_read(kind: str, tmp_path: Path, memory: Any) -> None:
    missing = where(kind, tmp_path, memory, "missing.csv")
    with pytest.raises(InvalidInputError, match=r"train_data: .*missing\.csv does not exist"):
        files.resolve("train_data", missing)
    empty = where(kind, tmp_path, memory, "empty.csv")
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"train_data: .*empty\.csv is empty"):
        files.resolve("train_data", empty)
    folder = where(kind, tmp_path, memory, "folder.csv")
    (folder / "inner.csv").write_bytes(b"a,b\n1,2\n") if kind != "local" else None
    if kind == "local":
        folder.mkdir()
    with pytest.raises(InvalidInputError, match=r"train_data: .*folder\.csv is a directory"):
        files.resolve("train_data", folder)


def test_an_unknown_scheme_is_named() -> None:
    unusable = r"'nosuch://bucket/a\.csv' is not a usable object storage URL"
    with pytest.raises(InvalidInputError, match=f"train_data: {unusable}"):
        files.resolve("train_data", "nosuch://bucket/a.csv")
    with pytest.raises(InvalidInputError, match=f"output_data: {unusable}"):
        files.output_location("output_data", "nosuch://bucket/a.csv")


def test_a_local_output_gets_its_folder_and_a_folder_is_refused(tmp_path: Path) -> None:
    output = files.output_location("output_data", str(tmp_path / "new" / "deeper" / "scores.csv"))
    assert output == tmp_path / "new" / "deeper" / "scores.csv"  # a Path, as callers expect
    assert (tmp_path / "new" / "deeper").is_dir()
    with pytest.raises(InvalidInputError, match="is a directory; give a file path"):
        files.output_location("output_data", tmp_path / "new")


@pytest.mark.parametrize("kind", KINDS)
def test_an_output_replaces_the_previous_only_when_whole(kind: str, tmp_path: Path, memory: Any) -> None:
    """Written as ``.scores.csv.part`` beside it, then moved: a reader meanwhile sees the previous result."""
    location = files.output_location("output_data", where(kind, tmp_path, memory, "out/scores.csv"))
    location.write_bytes(b"row_number,prediction\n1,old\n")
    partial = location.with_name(".scores.csv.part")
    with files.open_for_writing(location) as stream:
        stream.write(b"row_number,prediction\n1,new\n")
        stream.flush()
        assert location.read_bytes() == b"row_number,prediction\n1,old\n"
    assert location.read_bytes() == b"row_number,prediction\n1,new\n"
    assert not partial.exists()

    def fail_half_way() -> None:
        with files.open_for_writing(location) as stream:
            stream.write(b"row_number,prediction\n1,half\n")
            raise RuntimeError("row 2 failed")

    with pytest.raises(RuntimeError, match="row 2 failed"):
        fail_half_way()
    assert location.read_bytes() == b"row_number,prediction\n1,new\n"
    assert not partial.exists()


_HOOK_LINEAGE = """
import json, sys
from pathlib import Path

from airflow.providers.common.compat.sdk import ObjectStoragePath, get_hook_lineage_collector
from airflow.sdk.io import attach
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_predone import files, lineage

collector = get_hook_lineage_collector()
store = MemoryFileSystem()
attach(protocol="memory", fs=store)
data = Path(sys.argv[1]).read_bytes()
folder = Path(sys.argv[2])
(folder / "local.csv").write_bytes(data)
inputs = [
    folder / "local.csv",
    ObjectStoragePath(f"file://{folder}/local.csv"),
    ObjectStoragePath("memory://bucket/in/train.csv"),
]
store.pipe_file("/bucket/in/train.csv", data)  # not through ObjectStoragePath: its writes are lineage
for location in inputs:
    source = files.resolve("train_data", location)
    files.read_csv_header(source)
    with source.open() as stream:
        while stream.read(65536):
            pass
    output = files.output_location("output_data", str(location).replace("train", "scores").replace("local", "out"))
    with files.open_for_writing(output) as stream:
        stream.write(data)
    lineage.output_file(output, rows=1)  # reads the output's header for its schema facet
collected = collector.collected_assets
print(json.dumps({
    "collector": type(collector).__name__,
    "inputs": [str(a.asset.uri) for a in collected.inputs],
    "outputs": [str(a.asset.uri) for a in collected.outputs],
}))
"""


def test_files_read_and_written_here_are_no_hook_level_lineage(tmp_path: Path) -> None:
    """
    Each operator reports its own lineage; a file it reads or writes is no hook-level asset of
    Airflow's collector besides. ``ObjectStoragePath.open`` reported every read and write (an
    output's header, read for its lineage facets, made it an *input*). A process of its own:
    the collector is live only once the OpenLineage provider is configured at start.
    """
    env = {**os.environ, **airflow_home_environment(tmp_path / "home")}
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps({"type": "console"})
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "predone-tests"
    (tmp_path / "work").mkdir()
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_HOOK_LINEAGE), str(DATA / "train.csv"), str(tmp_path / "work")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["collector"] == "HookLineageCollector"  # live: the check below means something
    assert found == {"collector": "HookLineageCollector", "inputs": [], "outputs": []}
