"""
The cluster tests' load: hundreds of deferred waits in DAG runs of 50 tasks — train and retrain
operators (each starts its own job) and train and retrain sensors on jobs the test started,
most of them with ``start_from_trigger`` and ``end_from_trigger`` (no worker at all).

The sensors' job ids must be literals for ``start_from_trigger``, so the test writes them to
``cluster_load_NN.json`` and links this file in as ``cluster_load_NN.py`` beside it: one small
DAG per file. Every task run parses its DAG's file, and Airflow 3.3's triggerer deserialises a
start_from_trigger task's whole DAG for each trigger (seen: 0.4 s each in a 300-task DAG, its
heartbeat and event loop blocked for 26-36 s), so neither may pay for the other DAGs' tasks.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_predone.operators.predone import PredictionOneRetrainOperator, PredictionOneTrainOperator
from airflow_provider_predone.sensors.predone import PredictionOneRetrainSensor, PredictionOneTrainSensor

SPEC = Path(__file__).with_suffix(".json")  # in the DAGs folder: the link's name, not its target
DATA = Path(__file__).resolve().parents[3] / "example_dags" / "data"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def load_dag(dag_id: str) -> DAG:
    # No retries: a task that needs a second try shows as a failure.
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_tasks=1000,
        default_args={"retries": 0},
        tags=["tests"],
    )


if SPEC.exists():
    spec = json.loads(SPEC.read_text())
    poll = float(spec["poll_interval"])
    dag_id = Path(__file__).stem  # the link's name: cluster_load_00, cluster_load_01, ...
    with load_dag(dag_id) as dag:
        for i in range(spec["train_operators"]):
            PredictionOneTrainOperator(
                task_id=f"train_op_{i:03}",
                train_data=str(DATA / "train.csv"),
                eval_data=str(DATA / "eval.csv"),
                model_name=f"{dag_id}-{i}",
                config=CONFIG,
                deferrable=True,
                poll_interval=poll,
            )
        for i, model_id in enumerate(spec["retrain_operators"]):
            PredictionOneRetrainOperator(
                task_id=f"retrain_op_{i:03}",
                model_id=model_id,
                train_data=str(DATA / "new_month.csv"),
                deferrable=True,
                poll_interval=poll,
            )
        for i, (external_process_id, from_trigger, end_in_trigger) in enumerate(spec["train_sensors"]):
            PredictionOneTrainSensor(
                task_id=f"train_sensor_{i:03}",
                external_process_id=external_process_id,
                start_from_trigger=from_trigger,
                end_from_trigger=end_in_trigger,
                deferrable=True,
                poke_interval=poll,
                timeout=1800,
            )
        for i, (retrain_job_id, model_id, from_trigger, end_in_trigger) in enumerate(spec["retrain_sensors"]):
            PredictionOneRetrainSensor(
                task_id=f"retrain_sensor_{i:03}",
                retrain_job_id=retrain_job_id,
                model_id=model_id,
                start_from_trigger=from_trigger,
                end_from_trigger=end_in_trigger,
                deferrable=True,
                poke_interval=poll,
                timeout=1800,
            )
