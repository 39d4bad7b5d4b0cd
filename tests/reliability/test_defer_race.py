"""
Deferred tasks under a real scheduler (issue 16.1): a trigger that fires moments after its task
deferred must not get the task failed.

When a task defers, its worker exits and the executor reports ``success`` for that try; the
trigger's event sets the same try back to ``scheduled`` and the scheduler queues it again. If the
scheduler drains the stale ``success`` only after it queued the resumed try, Airflow 3.3.2 takes
it for a task killed externally (``... finished with state success, but the task instance's
state attribute is queued``) and fails it. See docs/deferrable.md, "Short jobs and a real
scheduler".

Here: a real Airflow (``airflow_cluster.py``), the emulator with short jobs, 1 s polls, several
train → deploy → retrain → switch runs at once. Every run must succeed, and Airflow's audit log
must hold no such "state mismatch" (it records one even when a task retry hides the failure);
no trigger may fire before the scheduler has taken in the exit report of the worker that
deferred (the race's window, open in every run tried without the fix, failures or not); and the
jobs must be short enough that the triggers find them ended on their first poll.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_cluster import AirflowCluster, running_cluster
from helpers import SECRET_KEY, predone_connection

from airflow_provider_predone.emulator import EmulatorProcess

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE.parent / "dags" / "defer_race.py"
DAG_ID = "defer_race"
RUNS = 4
#: each deferring task and the job status its trigger fires on
DEFERRING = {"train": "finished", "deploy": "running", "retrain": "job_finished"}
JOB_SECONDS = 0.5  # shorter than one poll: most triggers find their job ended on their first poll

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(secret_key=SECRET_KEY, job_seconds=JOB_SECONDS, build_seconds=0.5) as process:
        yield process


@pytest.fixture(scope="module")
def cluster(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    env = {"AIRFLOW_CONN_PREDONE_DEFAULT": predone_connection(emulator.url)}
    with running_cluster(tmp_path_factory.mktemp("defer-race"), [DAG_FILE], env) as cluster:
        yield cluster


def stale_success_mismatches(cluster: AirflowCluster) -> list[str]:
    """
    Airflow's audit-log entries for a task failed over an executor ``success`` (the race).

    Not those over a ``failed`` one: a worker whose start timed out against a loaded api-server.
    """
    rows = cluster.query(
        "SELECT task_id, run_id, extra FROM log WHERE event = 'state mismatch' AND extra LIKE ?",
        "%finished with state success%",
    )
    return [f"{row['run_id']}/{row['task_id']}: {row['extra'][:200]}" for row in rows]


def trigger_logs(cluster: AirflowCluster) -> Iterator[tuple[tuple[str, str, int], list[dict[str, Any]]]]:
    """Every trigger log of the DAG: ``(task_id, run_id, try_number)`` and its JSON lines."""
    for path in sorted(cluster.logs.glob(f"dag_id={DAG_ID}/run_id=*/task_id=*/attempt=*.log.trigger.*.log")):
        run_id = path.parent.parent.name.split("=", 1)[1]
        task_id = path.parent.name.split("=", 1)[1]
        attempt = int(path.name.split("=", 1)[1].split(".", 1)[0])
        lines = [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]
        yield (task_id, run_id, attempt), lines


def exit_reports(cluster: AirflowCluster) -> dict[tuple[str, str, int], float]:
    """
    When the scheduler took in the executor's first ``success`` for each try: the report of the
    worker that deferred (the scheduler's own log, ``Received executor event ...``).
    """
    pattern = re.compile(
        r"(\S+) \[info\s*\] Received executor event with state success for task instance "
        rf"TaskInstanceKey\(dag_id='{DAG_ID}', task_id='(\w+)', run_id='([\w-]+)', try_number=(\d+)"
    )
    out: dict[tuple[str, str, int], float] = {}
    for line in cluster.output_of("scheduler").read_text(errors="replace").splitlines():
        if seen := pattern.match(line):
            out.setdefault((seen[2], seen[3], int(seen[4])), unix(seen[1]))
    return out


def unix(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_short_deferred_jobs_under_a_real_scheduler(cluster: AirflowCluster) -> None:
    run_ids = [f"race-{n}" for n in range(RUNS)]
    for run_id in run_ids:  # one after the other: concurrent writers can lock sqlite out
        cluster.trigger_dag(DAG_ID, run_id)

    finals = {run_id: cluster.wait_for_run(DAG_ID, run_id, timeout=240) for run_id in run_ids}
    states = {run_id: cluster.task_states(DAG_ID, run_id) for run_id in run_ids}
    mismatches = stale_success_mismatches(cluster)
    reports = exit_reports(cluster)
    fired_at_once, margins = 0, []
    for key, lines in trigger_logs(cluster):
        statuses = [line["event"] for line in lines if " is now '" in line.get("event", "")]
        fired = [unix(line["timestamp"]) for line in lines if line.get("event") == "Trigger fired event"]
        if not (statuses and fired):
            continue
        fired_at_once += statuses[0].endswith(f" is now '{DEFERRING[key[0]]}'")
        # The race's window: how long before the trigger fired the scheduler took in the
        # deferring worker's exit (negative: after it fired, the report was late).
        margins.append(round(fired[0] - reports.get(key, float("inf")), 1))
    late = [margin for margin in margins if margin < 0]
    print(  # the figures docs/deferrable.md quotes (make reliability runs with -rP)
        json.dumps(
            {
                "runs": RUNS,
                "failed_runs": sum(state != "success" for state in finals.values()),
                "triggers_fired": len(margins),
                "fired_on_their_first_poll": fired_at_once,
                "exit_reports_after_the_trigger_fired": len(late),
                "stale_success_mismatches": len(mismatches),
                "margins_s": sorted(margins),
            }
        )
    )
    assert not mismatches, mismatches
    assert all(state == "success" for state in finals.values()), states
    # No trigger fired before the scheduler had taken in its task's exit report: the window
    # the failures above come from stayed shut, failed or not (without the provider's first
    # poll delay, every run tried had some).
    assert not late, sorted(margins)
    # Not vacuous: the jobs were short enough that the triggers found them ended at once.
    assert fired_at_once >= RUNS, fired_at_once
