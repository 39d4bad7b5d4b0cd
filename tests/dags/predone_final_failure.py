"""A retraining that fails at the service on its last try: its retry record must not outlive it."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import PredictionOneRetrainOperator, PredictionOneTrainOperator

with DAG(
    dag_id="predone_final_failure",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"data": Param(type="string")},
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data="{{ params.data }}/train.csv",
        model_name="final_failure",
        config={"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"},
        deferrable=False,
        poll_interval=0.2,
        timeout=60,
    )
    # score.csv lacks the target column: the service accepts the upload, then the job fails.
    PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data="{{ params.data }}/score.csv",
        deferrable=False,
        poll_interval=0.2,
        timeout=60,
        retries=0,
    )
