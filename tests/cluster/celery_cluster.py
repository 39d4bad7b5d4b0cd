"""
Airflow the way users deploy it beyond one machine: PostgreSQL as the metadata database, the
CeleryExecutor with Redis as its broker (results in PostgreSQL), two Celery workers, two
triggerers, plus the api-server, scheduler and dag-processor — each its own process, on
127.0.0.1 only. Built on the reliability suite's :class:`AirflowCluster` (one home, the CLI,
component logs, kills); only the database, the executor and the component list differ.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from airflow_cluster import COMPONENTS, AirflowCluster
from helpers import wait_for
from services import Postgres, Redis

HERE = Path(__file__).resolve().parent
SECRET_KEY = f"cluster-{secrets.token_hex(12)}-secret"
#: Celery worker slots per worker: a task runs only until it defers, so many slots turn 200
#: tasks into waits quickly; the test samples that none is held while they wait.
WORKER_CONCURRENCY = 16
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")


class CeleryCluster(AirflowCluster):
    """:class:`AirflowCluster` on PostgreSQL and Celery/Redis, with two workers and two triggerers."""

    def __init__(self, home: Path, dags: list[Path], env: dict[str, str], postgres: Postgres, redis: Redis) -> None:
        self.postgres = postgres
        self.redis = redis
        super().__init__(
            home,
            dags,
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": redis.url,
                # The driver named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3.
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                # One message per free slot: a worker never sits on queued work it cannot run.
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "400",
                "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "128",
                # A task whose worker died is failed (and retried) after this many seconds silent;
                # 15 s failed a healthy task of the load on a 2-core machine at load average 13.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                # A triggerer silent this long is dead: its triggers go to the other one.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__TRIGGERER__CAPACITY": "1000",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "5",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "cluster_hostname.hostname",
                **env,
            },
        )
        components: dict[str, list[str]] = {
            name: COMPONENTS[name] for name in ("api-server", "scheduler", "dag-processor")
        }
        for worker in WORKERS:
            # Distinct hostnames; no log server (it would listen on every interface).
            components[worker] = [
                "celery", "worker", "--celery-hostname", f"{worker}@127.0.0.1",
                "--concurrency", str(WORKER_CONCURRENCY), "--skip-serve-logs", "--without-mingle", "--without-gossip",
            ]  # fmt: skip
        for triggerer in TRIGGERERS:
            components[triggerer] = COMPONENTS["triggerer"]
        self.components = components

    def start(self, component: str) -> Any:
        # Each component reports its name as its hostname (cluster_hostname.py).
        shared = self.env
        self.env = {**shared, "PREDONE_CLUSTER_COMPONENT": component}
        try:
            return super().start(component)
        finally:
            self.env = shared

    # --- the metadata database, PostgreSQL this time -------------------------------------------

    def query(self, sql: str, *params: Any) -> list[Any]:
        return self.postgres.query(sql.replace("?", "%s"), *params)

    def live_jobs(self, job_type: str, threshold: float = 5.0) -> list[Any]:
        return self.query(
            "SELECT id, hostname, state FROM job WHERE job_type = %s AND state = 'running' "
            "AND latest_heartbeat > now() - make_interval(secs => %s)",
            job_type,
            threshold,
        )

    def up(self) -> CeleryCluster:
        super().up()
        wait_for("both triggerers", lambda: len(self.live_jobs("TriggererJob")) == 2, timeout=120)
        wait_for("both Celery workers", lambda: len(self.celery_workers()) == 2, timeout=120)
        return self

    # --- Celery ---------------------------------------------------------------------------------

    def celery_app(self) -> Any:
        from celery import Celery

        return Celery("predone-cluster-probe", broker=self.redis.url)

    def celery_workers(self) -> dict[str, list[Any]]:
        """Worker hostname to the tasks it runs right now (``celery inspect active``)."""
        self.check_alive()
        return self.celery_app().control.inspect(timeout=2.0).active() or {}

    # --- processes ------------------------------------------------------------------------------

    def pids(self, component: str) -> list[int]:
        """The component's process and every process in its group (``ps``-free, from /proc)."""
        group = self.processes[component].pid
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if int(fields[2]) == group:  # field 5 of stat: the process group
                    out.append(int(entry.name))
        return out

    def revive(self) -> list[str]:
        """Start again every component that exited, as systemd's ``Restart=`` or Kubernetes would."""
        exited = [name for name, process in self.processes.items() if process.poll() is not None]
        for name in exited:
            self.start(name)
        return exited

    def kill_tree(self, component: str) -> list[int]:
        """
        SIGKILL a component and every process descended from it, as losing its machine (or
        its container, or systemd's control group) would: Airflow's task processes run in
        sessions of their own, out of reach of a process-group kill. Answers the pids killed.
        """
        root = self.processes[component].pid
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(entry.name))
        tree, todo = [], [root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.kill(component)
        return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def running_celery_cluster(
    home: Path, dags: list[Path], env: dict[str, str], postgres: Postgres, redis: Redis
) -> Iterator[CeleryCluster]:
    cluster = CeleryCluster(home, dags, env, postgres, redis)
    try:
        yield cluster.up()
    finally:
        cluster.stop()
