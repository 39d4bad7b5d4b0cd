"""A training through the ``direct_key`` connection, which the tests give a wrong or expired key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_predone.operators.predone import PredictionOneTrainOperator

with DAG(dag_id="predone_bad_key", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    PredictionOneTrainOperator(
        task_id="train",
        predone_conn_id="direct_key",
        train_data=str(Path(__file__).parents[2] / "example_dags" / "data" / "train.csv"),
        model_name="m",
        config={"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"},
    )
