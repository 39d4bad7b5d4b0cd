"""
``make demo`` leaks no secret: the demo script runs as a user runs it (``scripts/demo.py``,
``airflow dags test`` of the lifecycle and AiTEMS example DAGs against its own emulator), with
a distinctive secret key and ``--secrets-file`` to learn every secret its emulator issued.

None of them may appear in what it printed, in the ``airflow dags test`` output it keeps (which
carries every task and trigger log line of the run), in any file of its Airflow home, in any
table of its metadata database (XCom, rendered template fields, ...) or in the trigger kwargs,
decrypted with the home's Fernet key as the triggerer does.

Task log *files* and a separate triggerer process do not exist in ``airflow dags test``; those
paths, with positive controls of the masking, are checked on a real Airflow in
``test_airflow_cluster.py``.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
SECRET_KEY = f"demo-{secrets.token_hex(12)}-secret"

# The demo runs four DAGs (the nightly AiTEMS one too): minutes on a busy machine, as long as its
# subprocess may take.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def decrypted_trigger_kwargs(home: Path) -> list[tuple[str, str]]:
    from cryptography.fernet import Fernet

    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    fernet = Fernet(config["core"]["fernet_key"].encode())
    with closing(sqlite3.connect(home / "airflow.db")) as db:
        rows = db.execute("SELECT classpath, kwargs FROM trigger").fetchall()
    # As Airflow's Trigger._decrypt_kwargs: some paths store them unencrypted (JSON), else Fernet.
    return [(c, k if k.startswith("{") else fernet.decrypt(k.encode()).decode()) for c, k in rows]


def test_the_demo_prints_logs_and_stores_no_secret(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    secrets_file = tmp_path / "secrets.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test suite's Airflow
    result = subprocess.run(
        [
            *(sys.executable, str(REPO / "scripts" / "demo.py")),
            *("--secret-key", SECRET_KEY, "--dir", str(demo), "--secrets-file", str(secrets_file)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-5000:]
    assert "quality gate       passed" in printed
    assert "500 rows before the switch by model version 1, the same 500 after it by model version 2" in printed
    assert f"Task logs: {demo}/predone_lifecycle.log, {demo}/aitems_train.log" in printed  # checked below

    issued = json.loads(secrets_file.read_text())
    assert issued["secret_key"] == SECRET_KEY
    values = {
        SECRET_KEY,
        issued["aitems_secret_key"],
        *issued["api_keys"],
        *issued["classifier_api_keys"],
        *issued["url_signatures"],
    }
    assert len(issued["api_keys"]) >= 2
    assert issued["classifier_api_keys"]
    assert len(issued["url_signatures"]) >= 5

    def leaks(text: str) -> list[str]:
        return [v[:8] + "…" for v in values if v in text]

    assert not leaks(printed)
    # The `airflow dags test` output: every task's and trigger's log lines.
    run_logs = {path.name: path.read_text() for path in demo.glob("*.log")}
    assert set(run_logs) == {
        "predone_lifecycle.log",
        "aitems_train.log",
        "predone_forecast.log",
        "aitems_recommendations.log",
    }
    assert "Retrain job" in run_logs["predone_lifecycle.log"]  # task log lines are really in there
    assert "is now 'job_finished'" in run_logs["predone_lifecycle.log"]  # and trigger log lines
    for name, text in run_logs.items():
        assert not leaks(text), name
    # Every other file it wrote: Airflow home (config, logs), outputs, the emulator's objects.
    home = demo / "airflow"
    for path in demo.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".zip"):
            assert not leaks(path.read_text(errors="replace")), path
    # The metadata database, every table.
    with closing(sqlite3.connect(home / "airflow.db")) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        filled = set()
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from sqlite_master
            filled |= {table} if rows else set()
            for row in rows:
                assert not leaks(" ".join(map(str, row))), table
    assert {"xcom", "rendered_task_instance_fields", "trigger"} <= filled
    # Trigger kwargs, decrypted.
    triggers = decrypted_trigger_kwargs(home)
    classes = {classpath.rsplit(".", 1)[1] for classpath, _ in triggers}
    assert {"PredictionOneTrainTrigger", "PredictionOneRetrainTrigger", "AitemsTrainingTrigger"} <= classes
    assert {"AitemsDatasetTrigger", "AitemsServiceTrigger"} <= classes  # the nightly AiTEMS DAG's waits
    for classpath, kwargs in triggers:
        assert not leaks(kwargs), classpath
