"""
A real, small Airflow for the reliability tests: api-server (execution API only), scheduler
with the LocalExecutor, dag-processor and triggerer, each its own process, on sqlite, bound to
127.0.0.1 only.

``dag.test()`` runs every task and trigger inside the test process, so it cannot show what a
killed task process, a retried try or a restarted triggerer does. Here every task runs the way
it does in production: the scheduler queues it, a LocalExecutor worker starts a supervisor,
the supervisor forks the task process (whose pid Airflow records in ``task_instance.pid``),
retries go through ``up_for_retry``, deferred tasks wait in a separate triggerer process, and
task state (``task_state_store`` on Airflow 3.3) lives in the metadata database behind the
execution API.

The tests read the metadata database with plain ``sqlite3`` (the test process itself is
configured for another Airflow home) and drive Airflow through its CLI.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

from helpers import wait_for

COMPONENTS = {
    # --apps execution: the tasks only need the execution API; no UI, no auth manager set-up.
    "api-server": ["api-server", "--host", "127.0.0.1", "--apps", "execution", "--workers", "1"],
    # --skip-serve-logs: no log server (it would listen on every interface); logs are read from disk.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowCluster:
    """
    The Airflow components as processes sharing one home (``home``) and one sqlite database.

    :param home: a fresh directory for ``AIRFLOW_HOME`` (database, logs, component output).
    :param dags: DAG files to link into the DAGs folder.
    :param env: extra environment (connections, ``PYTHONPATH`` ...), passed to every component.
    """

    def __init__(self, home: Path, dags: list[Path], env: dict[str, str]) -> None:
        self.home = home
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True)
        for dag in dags:
            (self.dags_folder / dag.name).symlink_to(dag)
        self.logs = home / "logs"
        self.database = home / "airflow.db"
        self.port = free_port()
        from cryptography.fernet import Fernet

        self.fernet_key = Fernet.generate_key().decode()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            # Shared by every component: the api-server must accept the scheduler's task tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Quick loops, so the tests wait seconds rather than minutes.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A triggerer silent this long counts as dead: its triggers go to the next one.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            **env,
        }
        #: component name to ``airflow`` arguments (a subclass may run more, e.g. two triggerers)
        self.components: dict[str, list[str]] = dict(COMPONENTS)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, int] = {}

    # --- processes ------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run ``airflow <args>`` and return its output; a non-zero exit fails with that output."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def output_of(self, component: str, generation: int | None = None) -> Path:
        """Where a component's stdout and stderr go (one file per start: ``triggerer-2.log``)."""
        return self.home / f"{component}-{generation or self.started[component]}.log"

    def start(self, component: str) -> subprocess.Popen[bytes]:
        self.started[component] = self.started.get(component, 0) + 1
        with self.output_of(component).open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *self.components[component]],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with everything it started
            )
        self.processes[component] = process
        return process

    def kill(self, component: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill a component and every process it started (its process group), and reap it."""
        process = self.processes.pop(component)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop(self) -> None:
        for component in list(self.processes):
            self.kill(component, signal.SIGTERM)

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                tail = self.output_of(component).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{component} exited with {process.returncode}:\n{tail}")

    def up(self) -> AirflowCluster:
        self.cli("db", "migrate", timeout=300)
        for component in self.components:
            self.start(component)
        wait_for("the api-server to listen", self._api_listening, timeout=120)
        wait_for("a live triggerer", lambda: self.live_jobs("TriggererJob"), timeout=120)
        return self

    def _api_listening(self) -> bool:
        self.check_alive()
        with closing(socket.socket()) as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    # --- the metadata database --------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        if not self.database.exists():
            return []
        with closing(sqlite3.connect(self.database, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, params).fetchall()

    def live_jobs(self, job_type: str, threshold: float = 5.0) -> list[sqlite3.Row]:
        return self.query(
            "SELECT id, hostname, state FROM job WHERE job_type = ? AND state = 'running' "
            "AND latest_heartbeat > datetime('now', ?)",
            job_type,
            f"-{threshold} seconds",
        )

    def trigger_dag(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        wait_for(
            f"DAG {dag_id} to be parsed",
            lambda: self.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id),
            120,
        )
        self.cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf or {}))

    def task(self, dag_id: str, run_id: str, task_id: str) -> sqlite3.Row | None:
        rows = self.query(
            "SELECT id, state, try_number, pid, hostname FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            dag_id,
            run_id,
            task_id,
        )
        return rows[0] if rows else None

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return rows[0]["state"] if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        def finished() -> str | None:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        rows = self.query(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id
        )
        return {row["task_id"]: (row["state"], row["try_number"]) for row in rows}

    def task_state_store(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        rows = self.query(
            "SELECT key, value FROM task_state_store WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            dag_id,
            run_id,
            task_id,
        )
        return {row["key"]: json.loads(row["value"]) for row in rows}

    def trigger_rows(self) -> list[dict[str, Any]]:
        """Every row of the ``trigger`` table, its kwargs decrypted and deserialised as the triggerer does."""
        from cryptography.fernet import Fernet

        try:
            from airflow.sdk.serde import deserialize
        except ImportError:  # Airflow < 3.2
            from airflow.serialization.serde import deserialize
        fernet = Fernet(self.fernet_key.encode())
        out = []
        for row in self.query("SELECT id, classpath, kwargs, created_date FROM trigger"):
            raw = row["kwargs"]
            text = raw if raw.startswith("{") else fernet.decrypt(raw.encode()).decode()
            kwargs = deserialize(json.loads(text))
            out.append({**dict(row), "raw": text, "kwargs": kwargs})
        return out


@contextmanager
def running_cluster(home: Path, dags: list[Path], env: dict[str, str]) -> Iterator[AirflowCluster]:
    cluster = AirflowCluster(home, dags, env)
    try:
        yield cluster.up()
    finally:
        cluster.stop()
