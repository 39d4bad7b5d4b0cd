"""
The DAG of the deferral-race test (``tests/reliability/test_defer_race.py``), on a real Airflow:
train → deploy a prediction API → retrain → switch, deferrable, with the short polls users set
against the emulator. One task retry: a worker that cannot reach a loaded api-server in time
(seen on a busy 2-core machine) starts again; the race is read from Airflow's audit log,
retried or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_predone.operators.predone import (
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
)

DATA = Path(__file__).resolve().parent.parent.parent / "example_dags" / "data"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}

with DAG(
    dag_id="defer_race",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1), "deferrable": True, "poll_interval": 1},
    tags=["tests"],
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "train.csv"),
        eval_data=str(DATA / "eval.csv"),
        model_name="defer-race-{{ run_id }}",  # concurrent runs: one model each
        config=CONFIG,
    )
    deploy = PredictionOneCreatePredictionApiOperator(task_id="deploy", model_id=train.output["model_id"])
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data=str(DATA / "new_month.csv"),
        eval_data=str(DATA / "new_month_eval.csv"),
    )
    switch = PredictionOneSwitchModelOperator(
        task_id="switch", retrain_job_id=retrain.output["retrain_job_id"], model_id=retrain.output["model_id"]
    )
    train >> deploy >> retrain >> switch
