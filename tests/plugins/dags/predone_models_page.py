"""A retraining the quality gate refuses (it asks for an AUC gain of 1.0): the "refused" point of the Models page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import (
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    metric_gate,
)

DATA = Path(__file__).resolve().parents[3] / "example_dags" / "data"
FAST = {"poll_interval": 0.5, "timeout": 120, "deferrable": False}

with DAG(
    dag_id="predone_models_page_refused",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"model_id": Param(1, type="integer", minimum=1)},
) as dag:
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id="{{ params.model_id }}",
        train_data=str(DATA / "new_month.csv"),
        eval_data=str(DATA / "new_month_eval.csv"),
        **FAST,
    )
    PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        quality_gate=metric_gate("auc", min_gain=1.0),
        on_refusal="skip",
    )
