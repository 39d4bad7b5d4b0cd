"""
Helpers shared by the benchmarks: the Airflow environment, the emulator connection, worker
subprocesses, memory readings and medians.

Every measurement that involves memory or a cold import runs in a fresh subprocess
(``python -m benchmarks.<module> worker ...``) that prints one JSON line; the parent process
only starts the emulator, prepares data and compares.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "predone-demo-secret-key"
CONN_ID = "predone_default"
CONN_ENV = "AIRFLOW_CONN_PREDONE_DEFAULT"
#: Marks the JSON result line of a worker subprocess (anything else on stdout is ignored).
RESULT_PREFIX = "BENCH-RESULT "


def prepare_environment() -> None:
    """Airflow reads its configuration at import: a throw-away AIRFLOW_HOME, no examples, quiet logs.

    Called before anything imports Airflow; subprocesses inherit the environment.
    """
    if "BENCH_AIRFLOW_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="predone-bench-airflow-home-")
        os.environ["BENCH_AIRFLOW_HOME"] = home
        os.environ["AIRFLOW_HOME"] = home
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # The workers import the package from this checkout even when run from elsewhere.
    path = os.environ.get("PYTHONPATH", "")
    if str(REPO) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), path)))


def use_emulator(url: str, **extra: Any) -> None:
    """Point the ``predone_default`` connection at the emulator (an env-var connection, no DB).

    :param extra: the connection's extras (``max_retries=10``, ...).
    """
    os.environ[CONN_ENV] = json.dumps({"conn_type": "predone", "host": url, "password": SECRET_KEY, "extra": extra})


# --- worker subprocesses -------------------------------------------------------------------------


def run_worker(module: str, args: Sequence[str], *, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``python -m <module> worker <args>`` and answer the JSON it printed after RESULT_PREFIX."""
    command = [sys.executable, "-m", module, "worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(
        f"worker {module} {' '.join(args)} failed (exit {done.returncode}):\n"
        f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-5000:]}"
    )


def emit(result: dict[str, Any]) -> None:
    """The one result line of a worker."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --- memory ----------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_kib() -> int:
    """Current resident set size of this process, KiB."""
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    """Peak resident set size (VmHWM) of this process, KiB."""
    return _status_kib("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5), so a later peak covers only what follows.

    :return: whether the kernel allowed it (if not, the peak may include earlier allocations).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (the emulator), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- statistics and formatting ---------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


class Stopwatch:
    """Wall-clock seconds since creation."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
