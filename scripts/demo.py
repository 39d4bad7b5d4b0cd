"""
``make demo``: the model lifecycle in Airflow against the local emulator, on one machine.

Starts the emulator and a local S3-compatible server standing in for NCP Object Storage (moto's,
from the test extras, as the tests start it: ``tests/object_storage.py``), prepares an Airflow
home under ``.demo/airflow`` with the example DAGs, points ``predone_default`` and
``aitems_default`` at them, runs ``predone_lifecycle``, ``aitems_train``, ``predone_forecast`` and
``aitems_recommendations`` with ``airflow dags test`` and prints what happened. Everything it
writes (Airflow home, task logs, the emulator's files, predictions, recommendations) stays in
``.demo/``; the object storage lives as long as the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
DAG_IDS = ("predone_lifecycle", "aitems_train", "predone_forecast", "aitems_recommendations")
#: Where each DAG writes its outputs, under the demo's output folder (``--conf output_dir``).
OUTPUT_DIRS = {"predone_lifecycle": ".", "predone_forecast": "forecast", "aitems_recommendations": "recommendations"}
#: The bucket the AiTEMS example uploads its files to (created by the demo, as a user creates theirs).
BUCKET = "aitems-demo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-key", default=os.environ.get("PREDONE_DEMO_SECRET_KEY", "predone-demo-secret-key"))
    parser.add_argument("--job-seconds", type=float, default=2.0, help="how long the emulator's jobs take")
    parser.add_argument("--dir", type=Path, default=DEMO, help="where everything is written (default: .demo)")
    parser.add_argument(
        "--secrets-file",
        type=Path,
        help="write every secret the emulator issued (its /_emulator/secrets) here as JSON, to check for leaks",
    )
    args = parser.parse_args()

    demo = args.dir.resolve()
    home = demo / "airflow"
    output = demo / "output"
    for folder in (home, output, demo / "emulator"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }
    os.environ.update(env)  # this process reads the results from the same database
    from airflow_provider_predone.emulator import EmulatorProcess

    sys.path.insert(0, str(REPO / "tests"))  # the tests' object storage server, one way of starting it
    from object_storage import ObjectStorageServer

    started = time.monotonic()
    with (
        ObjectStorageServer() as storage,
        EmulatorProcess(
            secret_key=args.secret_key,
            job_seconds=args.job_seconds,
            build_seconds=1.0,
            data_dir=str(demo / "emulator"),
            object_storage_endpoint=storage.endpoint,  # it reads the datasets' files from there
            test_controls=args.secrets_file is not None,  # /_emulator/secrets only for the leak check
        ) as emulator,
    ):
        storage.create_bucket(BUCKET)
        print(f"Emulator: {emulator.url}, Object Storage: {storage.endpoint} (bucket {BUCKET})")
        env["AIRFLOW_CONN_PREDONE_DEFAULT"] = json.dumps(
            {
                "conn_type": "predone",
                "host": emulator.url,
                "password": args.secret_key,
                "extra": {"service": "prediction_one"},  # as in production: the asset URIs match
            }
        )
        env["AIRFLOW_CONN_AITEMS_DEFAULT"] = json.dumps(
            {
                "conn_type": "aitems",
                "host": emulator.url,
                "login": "demo-aitems-access-key",
                "password": "demo-aitems-secret-key",
                "extra": {"object_storage_endpoint": storage.endpoint},
            }
        )
        airflow(env, "db", "migrate")
        for dag_id in DAG_IDS:
            conf = json.dumps(dag_conf(dag_id, output))
            print(f"Running {dag_id} (log: {shown(log_file(demo, dag_id))}) ...", flush=True)
            ok = airflow(env, "dags", "test", dag_id, "--conf", conf, log=log_file(demo, dag_id), check=False)
            print(f"  {dag_id}: {'success' if ok else 'FAILED — see the log'}")
        state = emulator.state()
        if args.secrets_file:
            args.secrets_file.write_text(json.dumps(emulator.secrets()))
    print_summary(output, state, time.monotonic() - started, home, demo)
    return 0 if all(run_state(d) == "success" for d in DAG_IDS) else 1


def dag_conf(dag_id: str, output: Path) -> dict[str, str]:
    """A DAG's ``--conf``: where it writes its outputs and, for AiTEMS' datasets, the demo's bucket."""
    conf = {"output_dir": str(output / OUTPUT_DIRS[dag_id])} if dag_id in OUTPUT_DIRS else {}
    return {**conf, "bucket": BUCKET} if dag_id == "aitems_recommendations" else conf


def log_file(demo: Path, dag_id: str) -> Path:
    """Where a DAG's run is logged: ``airflow dags test`` runs the tasks in its own process, so
    every task's log is in its output (Airflow's log folder stays empty)."""
    return demo / f"{dag_id}.log"


def airflow(env: dict[str, str], *args: str, log: Path | None = None, check: bool = True) -> bool:
    command = [sys.executable, "-m", "airflow", *args]
    with open(log or os.devnull, "w") as sink:
        result = subprocess.run(command, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")
    return result.returncode == 0


def latest_run(dag_id: str) -> DagRun | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).all()
        if runs:
            session.expunge(runs[0])
        return runs[0] if runs else None


def run_state(dag_id: str) -> str:
    run = latest_run(dag_id)
    return str(run.state) if run is not None else "missing"


def xcom(dag_id: str, task_id: str) -> object:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = latest_run(dag_id)
    if run is None:
        return None
    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, task_ids=task_id, key="return_value")
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def xcom_dict(dag_id: str, task_id: str) -> dict[str, Any]:
    """A task's return value, which the summarised tasks return as a dict; empty when missing."""
    value = xcom(dag_id, task_id) or {}
    if not isinstance(value, dict):
        raise TypeError(f"{dag_id}.{task_id} returned a {type(value).__name__}, not a dict")
    return value


def shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def scoring_line(summary: dict[str, Any]) -> str:
    """The same file is scored before and after the switch: say so, rather than add the two up."""
    each = summary.get("rows_scored_each") or []
    versions = summary.get("model_versions") or []
    if len(each) != 2:
        return f"{summary.get('rows_scored')} rows in all"
    version = [f" by model version {v}" if v is not None else "" for v in [*versions, None, None][:2]]
    return f"{each[0]} rows before the switch{version[0]}, the same {each[1]} after it{version[1]}"


def logs_line(demo: Path, home: Path) -> str:
    files = ", ".join(str(shown(log_file(demo, dag_id))) for dag_id in DAG_IDS)
    return f"Task logs: {files} (Airflow home: {shown(home)})"


def verdict_line(gate: object) -> str:
    """``auc 0.812 vs previous 0.580, threshold 0.580: accepted`` from the switch's recorded verdict."""
    if not isinstance(gate, dict):
        return "not recorded"
    if gate.get("metric") is None:
        return f"{gate.get('verdict')} ({gate.get('reason')})"

    def number(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return (
        f"{gate['metric']} {number(gate.get('value'))} vs previous {number(gate.get('previous'))}, "
        f"threshold {number(gate.get('threshold'))}: {gate.get('verdict')}"
    )


def print_summary(output: Path, state: dict[str, object], seconds: float, home: Path, demo: Path) -> None:
    summary = xcom_dict("predone_lifecycle", "summary")
    aitems = xcom_dict("aitems_train", "train")
    before, after = summary.get("metrics_before") or {}, summary.get("metrics_after") or {}

    def metric(values: dict[str, object], name: str) -> str:
        value = values.get(name)
        return f"{value:.3f}" if isinstance(value, float) else "-"

    print()
    print("Prediction One lifecycle (predone_lifecycle)")
    print(f"  model id           {summary.get('model_id')}")
    print(f"  AUC      before -> after retraining   {metric(before, 'auc')} -> {metric(after, 'auc')}")
    print(f"  accuracy before -> after retraining   {metric(before, 'accuracy')} -> {metric(after, 'accuracy')}")
    gate = "passed: switched to the retrained model" if summary.get("switched") else "refused: not switched"
    print(f"  quality gate       {gate}")
    print(f"  gate verdict       {verdict_line(summary.get('quality_gate'))}")
    print(f"  scored score.csv   {scoring_line(summary)}")
    print(f"  predictions        {shown(output)}/predictions_before.csv, predictions_after.csv")
    print("AiTEMS (aitems_train)")
    print(f"  trainings          {aitems.get('statuses')} in service {aitems.get('service_id')}")
    print_forecast(xcom_dict("predone_forecast", "summary"), output / OUTPUT_DIRS["predone_forecast"])
    print_recommendations({task: xcom_dict("aitems_recommendations", task) for task in RECOMMENDATION_TASKS})
    print("Emulator counters")
    keys = (
        "trainings_started",
        "retrain_jobs_started",
        "model_switches",
        "classifiers",
        "predictions",
        "aitems_trainings_started",
    )
    print("  " + ", ".join(f"{k}={state.get(k)}" for k in keys))
    print(f"Done in {seconds:.0f} s. {logs_line(demo, home)}")


#: The tasks of ``aitems_recommendations`` whose results the summary shows.
RECOMMENDATION_TASKS = (
    "register_users",
    "register_items",
    "register_interactions",
    "service",
    "train",
    "recommend_for_users",
    "related_items",
)


def print_recommendations(results: dict[str, dict[str, Any]]) -> None:
    """The nightly AiTEMS DAG's part: the datasets, the service, the trainings, the files written."""
    print("AiTEMS nightly recommendations (aitems_recommendations)")
    for task in RECOMMENDATION_TASKS[:3]:
        dataset = results.get(task) or {}
        label = "dataset " + task.removeprefix("register_").removesuffix("s")
        where = f"s3://{dataset.get('bucket')}/{dataset.get('key')}"
        print(f"  {label:<18} {dataset.get('name')} ({dataset.get('dataset_id')}) from {where}")
    service = results.get("service") or {}
    how = "created" if service.get("created") else "reused"
    print(f"  service            {service.get('name')} ({service.get('service_id')}, {how}): {service.get('status')}")
    train = results.get("train") or {}
    statuses = train.get("statuses") or {}
    versions = train.get("versions") or {}
    trained = ", ".join(f"{t} {versions.get(t)} {statuses.get(t)}" for t in sorted(versions)) or "-"
    print(f"  trainings          {trained}")
    for task, label in (("recommend_for_users", "for users"), ("related_items", "related items")):
        written = results.get(task) or {}
        if not written:
            print(f"  {label:<18} not written")
            continue
        print(
            f"  {label:<18} {written.get('targets')} targets ({written.get('empty')} without any), "
            f"{written.get('rows')} recommendations -> {shown(Path(str(written.get('output'))))}"
        )


def print_forecast(summary: dict[str, Any], output: Path) -> None:
    """The forecasting DAG's part of the summary: errors before and after retraining, the forecasts."""

    def rmse(values: object) -> str:
        value = values.get("rmse") if isinstance(values, dict) else None
        return f"{value:.1f}" if isinstance(value, float) else "-"

    print("Sales forecast, time-series mode (predone_forecast)")
    print(f"  backtest rmse      {rmse(summary.get('metrics_trained'))} (last 3 months of the history)")
    before, after = summary.get("metrics_before"), summary.get("metrics_after")
    print(f"  rmse on 2026-Q1    {rmse(before)} forecast -> {rmse(after)} retrained")
    print(f"  gate verdict       {verdict_line(summary.get('quality_gate'))}")
    forecasts = summary.get("forecasts")
    for month, stores in sorted(forecasts.items()) if isinstance(forecasts, dict) else []:
        cells = ", ".join(f"{store} {value:.0f}" for store, value in sorted(stores.items()))
        print(f"  {month}            {cells}")
    print(f"  forecasts          {shown(output)}/forecast_2026q1.csv, forecast_2026q2.csv")


if __name__ == "__main__":
    sys.exit(main())
