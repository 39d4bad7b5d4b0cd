"""A big upload streams to disk: the server's memory does not grow with the upload's size."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from emulator_support import PredoneClient

from airflow_provider_predone.emulator import EmulatorProcess

MIB = 1024 * 1024
UPLOAD_MIB = 320


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line")


def write_big_csv(path: Path, size_mib: int) -> int:
    """Write about ``size_mib`` MiB of CSV, one block at a time; answers the number of data rows."""
    row = b"C0000001,42,pro,17,2024-02-29,55.25,yes\n"
    block = row * (MIB // len(row))
    with path.open("wb") as sink:
        sink.write(b"customer_id,age,plan,visits,signup,spend,purchased\n")
        for _ in range(size_mib):
            sink.write(block)
    return size_mib * (MIB // len(row))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read the peak RSS")
def test_a_big_upload_streams_with_bounded_memory(
    fresh_emulator: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    rows = write_big_csv(source, UPLOAD_MIB)
    size = source.stat().st_size
    assert size >= 300 * 1000 * 1000
    emulator = fresh_emulator()
    predone = PredoneClient(emulator.url)
    key = predone.key()
    url = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    before = peak_rss(emulator.pid)
    started = time.monotonic()
    with source.open("rb") as body:  # a file object: requests streams it with a Content-Length
        response = requests.put(url["learn_data_set_upload_url"], data=body, timeout=120)
    assert response.status_code == 200
    uploaded_in = time.monotonic() - started
    # Listing the data set counts its rows (reading the whole file once more).
    listed = predone.call("GET", "/data-sets", key).json()["data_sets"][0]
    assert (listed["data_size"], listed["data_count"]) == (size, rows)
    growth = peak_rss(emulator.pid) - before
    print(f"\n{size / MIB:.0f} MiB uploaded in {uploaded_in:.1f} s; server peak RSS grew {growth / MIB:.1f} MiB")
    assert emulator.state()["bytes_uploaded"] == size
    assert growth < 64 * MIB
