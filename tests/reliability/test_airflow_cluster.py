"""
Exactly-once and secrets in a real Airflow: scheduler + LocalExecutor + triggerer + api-server
as separate processes (``airflow_cluster.py``), the emulator as the vendor.

* A retrain task whose process is killed (SIGKILL, as the OOM killer does) right after its
  upload landed, or between getting the upload URL and uploading, is retried by Airflow — same
  DAG run, same task instance, next try — and either re-attaches to the recorded
  ``retrain_job_id`` or makes the only upload. Never two retrain jobs.
* The triggerer is killed while a task is deferred and started again: the task finishes in its
  first try, and nothing is uploaded again.
* No secret — the connection's secret key, any API key, any prediction API key, any presigned
  URL signature (all from ``/_emulator/secrets``) — appears in task logs, trigger logs, the
  components' output, the metadata database (XCom, rendered template fields, ...) or the
  decrypted trigger kwargs; and a secret logged on purpose shows as ``***`` in the task log and
  in the trigger log (the masking is really on in the paths checked).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow_cluster import AirflowCluster, running_cluster
from helpers import wait_for

from airflow_provider_predone.emulator import EmulatorProcess

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE.parent / "dags" / "reliability_cluster.py"
DAG_ID = "reliability_cluster"
SECRET_KEY = f"reliability-{secrets.token_hex(12)}-secret"
TRIGGER_CLASSES = {
    "airflow_provider_predone.triggers.predone.PredictionOneTrainTrigger",
    "airflow_provider_predone.triggers.predone.PredictionOnePredictionApiTrigger",
    "airflow_provider_predone.triggers.predone.PredictionOneRetrainTrigger",
    "masking_probe.MaskingProbeTrigger",
}

pytestmark = pytest.mark.slow


@dataclass
class Observed:
    """What the module saw along the way: secrets issued before each reset, trigger rows."""

    secrets: list[dict[str, Any]] = field(default_factory=list)
    triggers: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def observed() -> Observed:
    return Observed()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    # Builds of 2 s: the prediction API trigger stays in the trigger table long enough to be seen.
    with EmulatorProcess(secret_key=SECRET_KEY, job_seconds=1.0, build_seconds=2.0, test_controls=True) as process:
        yield process


@pytest.fixture(scope="module")
def cluster(emulator: EmulatorProcess, observed: Observed, tmp_path_factory) -> Iterator[AirflowCluster]:
    env = {
        "AIRFLOW_CONN_PREDONE_DEFAULT": json.dumps(
            {"conn_type": "predone", "host": emulator.url, "password": SECRET_KEY}
        ),
        "PYTHONPATH": str(HERE),  # masking_probe, for the tasks and the triggerer
    }
    with running_cluster(tmp_path_factory.mktemp("airflow-cluster"), [DAG_FILE], env) as cluster:
        stop = threading.Event()
        watcher = threading.Thread(target=watch_triggers, args=(cluster, observed, stop), daemon=True)
        watcher.start()
        try:
            yield cluster
        finally:
            stop.set()
            watcher.join(timeout=10)


def watch_triggers(cluster: AirflowCluster, observed: Observed, stop: threading.Event) -> None:
    """Keep every row the ``trigger`` table ever holds (rows go once their trigger fired)."""
    while not stop.wait(0.1):
        try:
            for row in cluster.trigger_rows():
                observed.triggers[(row["id"], row["created_date"])] = row  # sqlite reuses ids
        except sqlite3.OperationalError:  # locked by a writer for a moment
            continue
        except Exception as exc:  # reported by the test that reads the rows
            observed.errors.append(repr(exc))


def fresh_run(emulator: EmulatorProcess, observed: Observed, **config: Any) -> None:
    """Keep the secrets issued so far (a reset forgets them), reset the emulator, configure it."""
    observed.secrets.append(emulator.secrets())
    emulator.reset()
    emulator.configure(job_seconds=1.0, **config)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — killed, not yet reaped by its parent — does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def recorded_retrain_job(cluster: AirflowCluster, run_id: str) -> dict[str, Any] | None:
    """The retrain task's retry record, where Airflow keeps it (task_state_store, else a Variable)."""
    store = cluster.task_state_store(DAG_ID, run_id, "retrain")
    if store:
        return store.get("retrain_job")  # type: ignore[no-any-return]
    rows = cluster.query(
        "SELECT val FROM variable WHERE key = ?",
        f"airflow_provider_predone::{DAG_ID}::{run_id}::retrain::-1::retrain_job",
    )
    return json.loads(rows[0]["val"]) if rows else None


def xcom(cluster: AirflowCluster, run_id: str, task_id: str) -> Any:
    rows = cluster.query(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
        DAG_ID,
        run_id,
        task_id,
    )
    return json.loads(rows[0]["value"]) if rows else None


def task_log(cluster: AirflowCluster, run_id: str, task_id: str, attempt: int) -> str:
    return (
        cluster.logs / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={attempt}.log"
    ).read_text()


def kill_retrain_while_its_upload_is_held(
    cluster: AirflowCluster, emulator: EmulatorProcess, run_id: str, hold: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    Run the DAG with the retrain upload held by the emulator, kill the retrain task's process
    while it waits, release the hold. Returns the emulator state and the task's retry record
    at the moment of the kill.
    """
    emulator.configure(**{hold: 600})
    try:
        cluster.trigger_dag(DAG_ID, run_id)
        wait_for("the retrain upload to be held", lambda: emulator.state()["held_requests"] == 1, timeout=240)
        state = emulator.state()
        ti = cluster.task(DAG_ID, run_id, "retrain")
        assert ti is not None
        assert (ti["state"], ti["try_number"]) == ("running", 1)
        recorded = recorded_retrain_job(cluster, run_id)
        assert recorded is not None, "the retrain job id was not recorded before the upload"
        pid, supervisor = ti["pid"], parent_of(ti["pid"])
        assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"airflow worker")  # the task process
        os.kill(pid, 9)
        wait_for("the task process to die", lambda: not alive(pid), timeout=30)
        assert alive(supervisor)  # only the task process died; its supervisor reports it
        time.sleep(0.5)  # the emulator notices the dropped connection
    finally:
        emulator.configure(**{hold: 0})
    return state, recorded


def test_retrain_killed_right_after_its_upload_landed_reattaches_to_its_job(
    cluster: AirflowCluster, emulator: EmulatorProcess, observed: Observed
) -> None:
    fresh_run(emulator, observed)
    run_id = "killed-after-upload"
    state, recorded = kill_retrain_while_its_upload_is_held(cluster, emulator, run_id, "retrain_upload_hold_after")
    assert state["retrain_jobs_started"] == 1  # the upload landed; the task never heard back

    assert cluster.wait_for_run(DAG_ID, run_id) == "success", cluster.task_states(DAG_ID, run_id)
    states = cluster.task_states(DAG_ID, run_id)
    assert states["retrain"] == ("success", 2), states  # the same task instance, its next try
    assert {task: s for task, s in states.items() if task != "retrain"} == {
        task: ("success", 1) for task in ("train", "deploy", "switch", "masking_probe")
    }
    assert xcom(cluster, run_id, "retrain")["retrain_job_id"] == recorded["retrain_job_id"]
    assert f"Re-attaching to retrain job {recorded['retrain_job_id']}" in task_log(cluster, run_id, "retrain", 2)
    final = emulator.state()
    assert (final["trainings_started"], final["retrain_jobs_started"], final["model_switches"]) == (1, 1, 1)
    assert final["uploads"] == 3  # training data, evaluation data, the one retrain upload


def test_retrain_killed_between_upload_url_and_upload_makes_the_only_upload(
    cluster: AirflowCluster, emulator: EmulatorProcess, observed: Observed
) -> None:
    fresh_run(emulator, observed)
    run_id = "killed-before-upload"
    state, recorded = kill_retrain_while_its_upload_is_held(cluster, emulator, run_id, "retrain_upload_hold_before")
    assert state["retrain_jobs_started"] == 0  # the URL was obtained and recorded, nothing uploaded

    assert cluster.wait_for_run(DAG_ID, run_id) == "success", cluster.task_states(DAG_ID, run_id)
    assert cluster.task_states(DAG_ID, run_id)["retrain"] == ("success", 2)
    retried = task_log(cluster, run_id, "retrain", 2)
    assert f"Retrain job {recorded['retrain_job_id']} of an earlier try never started; starting afresh" in retried
    assert xcom(cluster, run_id, "retrain")["retrain_job_id"] != recorded["retrain_job_id"]
    final = emulator.state()
    assert (final["trainings_started"], final["retrain_jobs_started"], final["model_switches"]) == (1, 1, 1)
    assert final["uploads"] == 3  # the killed try's upload never landed


def test_triggerer_killed_and_restarted_while_a_task_is_deferred(
    cluster: AirflowCluster, emulator: EmulatorProcess, observed: Observed
) -> None:
    fresh_run(emulator, observed)
    # The retraining outlasts the trigger's first poll (10 s after deferring, see
    # operators.base.first_poll_at) long enough to kill the triggerer mid-wait.
    emulator.configure(job_seconds=16.0)
    run_id = "triggerer-restart"
    cluster.trigger_dag(DAG_ID, run_id)
    retrain_logs = cluster.logs / f"dag_id={DAG_ID}" / f"run_id={run_id}" / "task_id=retrain"

    def polling() -> list[Path]:
        cluster.check_alive()
        ti = cluster.task(DAG_ID, run_id, "retrain")
        logs = list(retrain_logs.glob("attempt=1.log.trigger.*.log"))
        return [p for p in logs if "is now 'job_" in p.read_text()] if ti and ti["state"] == "deferred" else []

    (first_log,) = wait_for("the retrain trigger to poll in the triggerer", polling, timeout=240)
    before = emulator.state()
    assert before["retrain_jobs_started"] == 1
    cluster.kill("triggerer")  # SIGKILL, the whole process group: no clean shutdown
    time.sleep(2)
    assert cluster.task(DAG_ID, run_id, "retrain")["state"] == "deferred"
    cluster.start("triggerer")

    assert cluster.wait_for_run(DAG_ID, run_id) == "success", cluster.task_states(DAG_ID, run_id)
    assert cluster.task_states(DAG_ID, run_id)["retrain"] == ("success", 1)  # resumed, not retried
    after = emulator.state()
    assert after["uploads"] == before["uploads"] == 3  # nothing uploaded again
    assert (after["trainings_started"], after["retrain_jobs_started"], after["model_switches"]) == (1, 1, 1)
    # The second triggerer (another job id, so another trigger log) finished the wait.
    finished = [p for p in retrain_logs.glob("attempt=1.log.trigger.*.log") if p != first_log]
    assert len(finished) == 1, finished
    assert "is now 'job_finished'" in finished[0].read_text()
    assert cluster.output_of("triggerer", 2).exists()


def test_no_secret_anywhere_and_masking_is_on(
    cluster: AirflowCluster, emulator: EmulatorProcess, observed: Observed
) -> None:
    issued = [*observed.secrets, emulator.secrets()]
    values = {SECRET_KEY}
    for batch in issued:
        values |= {batch["secret_key"], *batch["api_keys"], *batch["classifier_api_keys"], *batch["url_signatures"]}
    assert len(values) > 30  # keys and signatures of three runs: the search below is not vacuous
    assert all(len(v) >= 20 for v in values)

    def leaks(text: str) -> list[str]:
        return [v[:8] + "…" for v in values if v in text]

    # Task logs, trigger logs, DAG processor logs: every file Airflow wrote under its log folder.
    log_files = [p for p in cluster.logs.rglob("*") if p.is_file()]
    assert len([p for p in log_files if ".trigger." in p.name]) >= 6
    for path in log_files:
        assert not leaks(path.read_text(errors="replace")), path
    # The components' own output (triggerers included). The LocalExecutor echoes task log lines
    # to the scheduler's stdout without masking them (Airflow 3.3.2); the probe's deliberate
    # secret is therefore expected there, and only there — every other line must be clean.
    for path in cluster.home.glob("*.log"):
        lines = [line for line in path.read_text(errors="replace").splitlines() if "masking probe (task)" not in line]
        assert not leaks("\n".join(lines)), path
    # The whole metadata database: XCom, rendered template fields, DAG run conf, task state, ...
    tables = [row["name"] for row in cluster.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    non_empty = set()
    for table in tables:
        rows = cluster.query(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from sqlite_master
        if rows:
            non_empty.add(table)
        for row in rows:
            assert not leaks(" ".join(map(str, tuple(row)))), table
    assert {"xcom", "rendered_task_instance_fields", "dag_run", "task_instance"} <= non_empty
    # Trigger kwargs as stored (encrypted), decrypted as the triggerer does.
    assert not observed.errors, observed.errors[:3]
    seen = {row["classpath"] for row in observed.triggers.values()}
    assert seen >= TRIGGER_CLASSES, seen
    for row in observed.triggers.values():
        assert not leaks(row["raw"]), row["classpath"]
        if row["classpath"] != "masking_probe.MaskingProbeTrigger":
            assert {"conn_id", "poll_interval", "deadline", "timeout"} <= set(row["kwargs"]), row["kwargs"]

    # Positive controls: a secret logged on purpose is masked in the task log and the trigger log.
    for run_id in ("killed-after-upload", "killed-before-upload", "triggerer-restart"):
        task_side = task_log(cluster, run_id, "masking_probe", 1)
        assert "masking probe (task): an upload URL is ***" in task_side
        probe_logs = cluster.logs / f"dag_id={DAG_ID}" / f"run_id={run_id}" / "task_id=masking_probe"
        trigger_side = "".join(p.read_text() for p in probe_logs.glob("attempt=1.log.trigger.*.log"))
        assert "masking probe (triggerer): the train API key is ***" in trigger_side
