"""
Retrain a deployed model on a new month of data and switch its prediction API to the
retrained version — but only if a quality gate accepts it.

The retraining uploads training and evaluation data together (the vendor's ``train_src/`` +
``eval_src/`` zip, built by the operator). The gate compares the retrained model with the
one served until now on the same evaluation data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import (
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    RetrainResult,
)

DATA = Path(__file__).parent / "data"


# [START howto_quality_gate]
def better_on_new_data(result: RetrainResult) -> bool:
    """Switch when the retrained model's AUC beats the served model's by at least 0.01."""
    if result.metrics is None or result.previous_metrics is None:
        return False  # unknown result format: never switch blindly
    return bool(result.metrics["auc"] >= result.previous_metrics["auc"] + 0.01)


# [END howto_quality_gate]


with DAG(
    dag_id="predone_retrain_and_switch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"model_id": Param(1, type="integer", minimum=1)},
    tags=["prediction-one", "example"],
) as dag:
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id="{{ params.model_id }}",
        train_data=str(DATA / "new_month.csv"),
        eval_data=str(DATA / "new_month_eval.csv"),
        deferrable=True,
        poll_interval=5,
        timeout=6 * 3600,
        retries=2,
    )
    switch = PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        quality_gate=better_on_new_data,
    )
