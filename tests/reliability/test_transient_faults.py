"""
Transient faults never fail a run and never duplicate remote work.

The example DAGs ``predone_lifecycle`` (train → deploy → score → retrain → gate → switch →
score) and ``aitems_train`` run, unmodified, against an emulator that gives a fault to 20 %
of all requests — 500/502/503, 429 with ``Retry-After``, connection resets, slow answers
that outlast the request timeout, and answers lost after the work was done — on every
endpoint, presigned uploads and downloads included. One seed per process, several at once
(``fault_run.py``). Every run must succeed, and the emulator must have counted exactly one
training, one prediction API, one retrain job and one switch per lifecycle run, and three
AiTEMS trainings per AiTEMS run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SEEDS = int(os.environ.get("PREDONE_FAULT_SEEDS", "20"))
PARALLEL = int(os.environ.get("PREDONE_FAULT_PARALLEL", "10"))
FAULT_RATE = 0.2
EXPECTED = {
    "predone_lifecycle": {"trainings_started": 1, "classifiers": 1, "retrain_jobs_started": 1, "model_switches": 1},
    "aitems_train": {"aitems_trainings_started": 3},
}

# Minutes: 20 seeds of two DAG runs each, under the 300 s default per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def run_seeds(seeds: list[int], work: Path) -> list[dict[str, Any]]:
    """Run ``seeds`` one after the other in one process; their outcomes."""
    command = [sys.executable, str(HERE / "fault_run.py"), "--work", str(work), "--fault-rate", str(FAULT_RATE)]
    result = subprocess.run(
        [*command, "--seeds", *map(str, seeds)], capture_output=True, text=True, timeout=1500, check=False
    )
    (work / "stderr.log").write_text(result.stderr)
    assert result.returncode == 0, f"seeds {seeds} exited {result.returncode}:\n{result.stderr[-5000:]}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_example_dags_succeed_without_duplicates_under_faults(tmp_path: Path, record_property) -> None:
    groups = [list(range(first, SEEDS + 1, PARALLEL)) for first in range(1, min(PARALLEL, SEEDS) + 1)]
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        outcomes = [o for done in pool.map(lambda g: run_seeds(g, tmp_path / f"seeds-{g[0]}"), groups) for o in done]

    faults: Counter[str] = Counter()
    requests = 0
    retried_tasks: list[str] = []
    problems = []
    for outcome in outcomes:
        for dag_id, run in outcome["runs"].items():
            faults.update(run["faults"])
            requests += run["counters"]["requests"]
            seed = outcome["seed"]
            retried_tasks += [f"{seed}:{dag_id}.{t}" for t, ti in run["tasks"].items() if ti["try_number"] > 1]
            if run["state"] != "success" or {ti["state"] for ti in run["tasks"].values()} != {"success"}:
                problems.append(f"seed {outcome['seed']}: {dag_id} {run['state']} {run['tasks']}")
            counted = {name: run["counters"][name] for name in EXPECTED[dag_id]}
            if counted != EXPECTED[dag_id]:
                problems.append(f"seed {outcome['seed']}: {dag_id} counted {counted}, expected {EXPECTED[dag_id]}")
    summary = {
        "seeds": len(outcomes),
        "runs": sum(len(o["runs"]) for o in outcomes),
        "requests": requests,
        "faults": dict(faults),
        "faults_total": sum(faults.values()),
        "retried_tasks": retried_tasks,
        "lifecycle_seconds": sorted(o["runs"]["predone_lifecycle"]["seconds"] for o in outcomes),
    }
    print(json.dumps(summary))
    record_property("fault_summary", json.dumps(summary))
    assert not problems, "\n".join(problems)
    assert len(outcomes) == SEEDS
    # The faults really happened, of every kind, at about the configured rate.
    assert set(faults) == {"http_500", "http_502", "http_503", "http_429", "reset", "slow", "lost"}
    assert all(count > 0 for count in faults.values()), faults
    assert 0.15 < sum(faults.values()) / requests < 0.25, (faults, requests)
