"""P5 (AiTEMS recommendations out) runs, in a tiny configuration. No timing is asserted."""

from __future__ import annotations

import os
import sys

import pytest
from helpers import REPO

if str(REPO) not in sys.path:  # the benchmarks package lives at the top of the checkout
    sys.path.insert(0, str(REPO))

from benchmarks import __main__ as cli
from benchmarks import p5_recommendations


def test_p5_reports_each_concurrency_against_its_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    # run() points aitems_default at its own emulator and pins this process apart from it.
    monkeypatch.setenv(p5_recommendations.CONN_ENV, "")
    cpus = os.sched_getaffinity(0)
    settings = p5_recommendations.Settings(
        targets=60, small_targets=20, single_targets=20, default_targets=40, repetitions=1
    )
    progress: list[str] = []
    try:
        line = p5_recommendations.run(settings, log=progress.append)
    finally:
        os.sched_setaffinity(0, cpus)
    assert line.startswith("P5 latency=20ms added, ")
    assert "ms measured (max_in_flight 1)" in line
    assert line.count("of ceiling") == 2
    assert "rss_growth 60 targets=" in line
    assert sum(entry.startswith("P5 c=") for entry in progress) == 4


def test_p5_is_listed_by_the_cli() -> None:
    assert "P5" in cli.BENCHMARKS
    assert cli._module("P5") is p5_recommendations
