"""The benchmark code runs, in tiny configurations. No timing is asserted: benchmarks are not tests.

The full benchmarks run with ``make bench`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path

import pytest
from helpers import REPO, predone_connection

from airflow_provider_predone.emulator import EmulatorProcess

if str(REPO) not in sys.path:  # the benchmarks package lives at the top of the checkout
    sys.path.insert(0, str(REPO))

from benchmarks import __main__ as cli
from benchmarks import p1_trigger_scale, p2_streaming, p3_parse_cost, p4_scoring


def test_p1_all_variants_poll_with_few_triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its own emulator: trainings must stay running, and its URL gives the triggers fresh API keys.
    with EmulatorProcess(job_seconds=3600, build_seconds=0.5) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator.url))
        ids = p1_trigger_scale.create_trainings(emulator.url, 20)
        assert len(set(ids)) == 20
        settings = p1_trigger_scale.Settings(triggers=20, interval=0.2, window=0.4, repetitions=1)
        results = {
            variant: [asyncio.run(p1_trigger_scale._measure(variant, emulator.url, ids, settings, emulator.pid))]
            for variant in p1_trigger_scale.VARIANTS
        }
    for variant, (result,) in results.items():
        assert result["variant"] == variant
        assert result["polls"] > 0
        assert result["cpu_per_poll"] > 0
    line = p1_trigger_scale.summarise(settings, results)
    assert line.startswith("P1 ")
    assert "vs_floor=" in line
    assert "vs_common=" in line


def test_p3_reports_the_import_ratio_and_heavy_modules() -> None:
    progress: list[str] = []
    line = p3_parse_cost.run(p3_parse_cost.Settings(runs=1, warmups=1), log=progress.append)
    assert line.startswith("P3 ")
    assert "ratio=" in line
    # The HTTP clients are imported when a task runs, not when a DAG file is parsed.
    assert "heavy_added=none" in line
    assert progress


def test_p2_source_file_is_a_csv_of_the_exact_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    assert p2_streaming.write_csv(path, 3) == 3 * p2_streaming.MIB
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][0] == "customer_id"
    assert {len(row) for row in rows} == {7}


def test_p2_measures_cpu_against_curl_in_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    progress: list[str] = []
    cpus = os.sched_getaffinity(0)
    try:
        line = p2_streaming.run(p2_streaming.Settings(size_mib=4, repetitions=2), log=progress.append)
    finally:
        os.sched_setaffinity(0, cpus)  # run() pins this process to one CPU, apart from the emulator
    assert line.startswith("P2 file=4MiB | upload: cpu=")
    assert "| download: cpu=" in line
    assert line.count("x curl (goal<=1.2") == 2
    assert sum("CPU s/GiB hook" in entry for entry in progress) == 4  # 2 pairs each way


def test_p4_reports_each_concurrency_against_its_ceiling() -> None:
    settings = p4_scoring.Settings(rows=60, small_rows=20, vendor_rows=20, default_rows=40, repetitions=1)
    progress: list[str] = []
    line = p4_scoring.run(settings, log=progress.append)
    assert line.startswith("P4 latency=20ms added, ")
    assert "ms measured (concurrency 1)" in line
    assert "c=8: " in line
    assert "c=32: " in line
    assert line.count("of ceiling") == 2
    assert any(entry.startswith("P4 operator c=1 ") for entry in progress)


def test_cli_rejects_unknown_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["P9"])
    assert "unknown benchmark" in capsys.readouterr().err
