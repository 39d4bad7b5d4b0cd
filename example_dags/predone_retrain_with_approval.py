"""
Retrain a deployed model and switch its prediction API to the retrained version only after
a person approves it in Airflow's "Required actions" page (Airflow 3.1+).

The reviewer sees both models' metrics side by side, the quality gate's verdict, the data
sizes and the retrain job id. A gate that refuses asks nobody; a rejection switches nothing
and skips the task (``on_refusal="skip"``), so the run still succeeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.approval import PredictionOneApproveSwitchOperator
from airflow_provider_predone.operators.predone import PredictionOneRetrainOperator, metric_gate

DATA = Path(__file__).parent / "data"

with DAG(
    dag_id="predone_retrain_with_approval",
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
    # [START howto_approve_switch]
    approve_and_switch = PredictionOneApproveSwitchOperator(
        task_id="approve_and_switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        quality_gate=metric_gate("auc"),  # no worse than the served model, before anyone is asked
        on_refusal="skip",
        response_timeout=timedelta(days=2),
    )
    # [END howto_approve_switch]
