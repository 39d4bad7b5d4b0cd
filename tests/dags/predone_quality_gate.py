"""Retrain, then every outcome of the quality gate: refused (fail, skip), metric missing, accepted.

Run against emulators writing result archives in layouts other than the default, so the gate
works on metrics it had to discover. Inputs come from the run's ``conf``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import (
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
    metric_gate,
)

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
FAST = {"poll_interval": 0.2, "timeout": 60, "deferrable": False}


def read_auc_from_csv(folder: Path) -> tuple[dict[str, float], dict[str, float]]:
    """A user's own reader: the first CSV row holding AUC, new and previous."""
    import csv

    for path in sorted(folder.rglob("*.csv")):
        with path.open(encoding="cp932", errors="replace", newline="") as handle:
            for row in csv.reader(handle):
                if row and row[0] == "AUC" and len(row) >= 3:
                    return {"auc": float(row[1])}, {"auc": float(row[2])}
    return {}, {}


with DAG(
    dag_id="predone_quality_gate",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"data": Param(type="string")},
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data="{{ params.data }}/train.csv",
        model_name="gate",
        config=CONFIG,
        **FAST,
    )
    deploy = PredictionOneCreatePredictionApiOperator(task_id="deploy", model_id=train.output["model_id"], **FAST)
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data="{{ params.data }}/new_month.csv",
        eval_data="{{ params.data }}/new_month_eval.csv",
        **FAST,
    )
    refused_fail = PredictionOneSwitchModelOperator(
        task_id="refused_fail",
        retrain_job_id=retrain.output,
        quality_gate=metric_gate("AUC", min_gain=1.0),
    )
    refused_skip = PredictionOneSwitchModelOperator(
        task_id="refused_skip",
        retrain_job_id=retrain.output,
        quality_gate=metric_gate("適合率", min_gain=1.0),
        on_refusal="skip",
        trigger_rule="all_done",
    )
    missing = PredictionOneSwitchModelOperator(
        task_id="metric_missing",
        retrain_job_id=retrain.output,
        quality_gate=metric_gate("rmse"),
        trigger_rule="all_done",
    )
    accepted = PredictionOneSwitchModelOperator(
        task_id="accepted",
        retrain_job_id=retrain.output,
        quality_gate=metric_gate("auc", min_gain=-1.0),
        metrics_reader=read_auc_from_csv,
        trigger_rule="all_done",
    )
    deploy >> retrain >> refused_fail >> refused_skip >> missing >> accepted
