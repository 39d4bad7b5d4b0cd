"""
Check an installed wheel the way a user meets it (``make wheel``).

Run with the python of a virtualenv that holds the built wheel and nothing of this
repository: the provider must import from that virtualenv, ``airflow providers list`` must
show it with its version, ``predone-emulator`` (its console script) must serve, and
``airflow dags test predone_train`` must train a model against that emulator and extract its
result. Everything runs in a temporary directory, outside the repository, so nothing from the
source tree can stand in for a file the wheel lacks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET_KEY = "wheel-check-secret-key"
LISTENING_PREFIX = "predone-emulator listening on "


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="predone-wheel-check-") as scratch:
        work = Path(scratch)
        env = environment(work)
        probe = "import airflow_provider_predone as p; print(p.__file__); print(p.__version__)"
        installed, version = run(env, work, str(BIN / "python"), "-c", probe).split()
        if not Path(installed).is_relative_to(BIN.parent):
            raise SystemExit(f"the provider imports from {installed}, not from the virtualenv {BIN.parent}")

        run(env, work, str(BIN / "airflow"), "db", "migrate")
        providers = run(env, work, str(BIN / "airflow"), "providers", "list")
        line = next((row for row in providers.splitlines() if "airflow-provider-predone" in row), "")
        if version not in line:
            raise SystemExit(f"`airflow providers list` does not show airflow-provider-predone {version}:\n{providers}")
        print(f"airflow providers list: {' '.join(line.split())}")

        emulator = subprocess.Popen(
            [str(BIN / "predone-emulator"), "--port", "0", "--job-seconds", "1", "--secret-key", SECRET_KEY],
            stdout=subprocess.PIPE,
            text=True,
            cwd=work,
            env=env,
        )
        try:
            assert emulator.stdout is not None
            first = emulator.stdout.readline()
            if not first.startswith(LISTENING_PREFIX):
                raise SystemExit(f"predone-emulator printed {first!r}")
            url = first.removeprefix(LISTENING_PREFIX).strip()
            print(f"predone-emulator: {url}")
            env["AIRFLOW_CONN_PREDONE_DEFAULT"] = json.dumps(
                {"conn_type": "predone", "host": url, "password": SECRET_KEY}
            )
            results = work / "results"
            conf = json.dumps({"result_dir": str(results)})
            test_log = run(env, work, str(BIN / "airflow"), "dags", "test", "predone_train", "--conf", conf, log=True)
            with urllib.request.urlopen(f"{url}/_emulator/state", timeout=30) as answer:  # noqa: S310 - our own URL
                trainings = json.load(answer)["trainings_started"]
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
        # `dags test` leaves no row in the `dag` table on Airflow 3.0, so `dags list-runs` cannot
        # tell: its own log line does.
        states = re.findall(r"DagRun Finished: dag_id=predone_train, .*? state=(\w+),", test_log)
        extracted = sorted(path.name for path in results.rglob("*") if path.is_file())
        if states != ["success"] or trainings != 1 or "model_summary.json" not in extracted:
            raise SystemExit(f"predone_train: runs {states}, trainings started {trainings}, extracted {extracted}")
        print(f"airflow dags test predone_train: success, 1 training, extracted {', '.join(extracted)}")
    print(f"wheel check passed in {time.monotonic() - started:.0f} s")
    return 0


def environment(work: Path) -> dict[str, str]:
    """An Airflow home and a DAGs folder in ``work``: one example DAG and its data, copied."""
    dags = work / "dags"
    (dags / "data").mkdir(parents=True)
    shutil.copy(REPO / "example_dags" / "predone_train.py", dags)
    for name in ("train.csv", "eval.csv"):
        shutil.copy(REPO / "example_dags" / "data" / name, dags / "data")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHON"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow.db'}",
        }
    )
    return env


def run(env: dict[str, str], cwd: Path, *command: str, log: bool = False) -> str:
    """Run a command of the virtualenv; its stdout (``log``: and stderr), or exit quoting it when it fails."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        output = result.stdout[-5000:] + result.stderr[-5000:]
        raise SystemExit(f"`{' '.join(command)}` failed ({result.returncode}):\n{output}")
    return result.stdout + result.stderr if log else result.stdout


if __name__ == "__main__":
    sys.exit(main())
