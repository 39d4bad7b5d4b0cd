"""
The whole model lifecycle on Prediction One, deferrable wherever it waits:

train → deploy a prediction API → score → retrain on a new month (with evaluation data) →
quality gate → switch the prediction API to the retrained model → score again.

Run it against the local emulator with ``make demo``.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
    metric_gate,
)

DATA = Path(__file__).parent / "data"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}

with DAG(
    dag_id="predone_lifecycle",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"output_dir": Param(str(Path(tempfile.gettempdir()) / "predone-lifecycle"), type="string")},
    default_args={"retries": 2, "retry_delay": 5, "deferrable": True, "poll_interval": 2},
    tags=["prediction-one", "example"],
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "train.csv"),
        eval_data=str(DATA / "eval.csv"),
        model_name="premium_purchase",
        config=CONFIG,
        result_dir="{{ params.output_dir }}/train",
    )

    # [START howto_operator_predone_create_prediction_api]
    deploy = PredictionOneCreatePredictionApiOperator(
        task_id="deploy",
        model_id=train.output["model_id"],
        ip_rules=[{"source": "0.0.0.0/0", "order": "allow", "priority": 1}],
    )
    # [END howto_operator_predone_create_prediction_api]

    # [START howto_operator_predone_batch_predict]
    score_before = PredictionOneBatchPredictOperator(
        task_id="score_before",
        classifier_id=deploy.output["classifier_id"],
        input_data=str(DATA / "score.csv"),
        output_data="{{ params.output_dir }}/predictions_before.csv",
        concurrency=8,
    )
    # [END howto_operator_predone_batch_predict]

    # [START howto_operator_predone_retrain]
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data=str(DATA / "new_month.csv"),
        eval_data=str(DATA / "new_month_eval.csv"),
        result_dir="{{ params.output_dir }}/retrain",
    )
    # [END howto_operator_predone_retrain]

    # [START howto_operator_predone_switch_model]
    switch = PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        # Switch only if the retrained model's AUC on the new month is no worse than before.
        quality_gate=metric_gate("auc", higher_is_better=True, min_gain=0.0),
    )
    # [END howto_operator_predone_switch_model]

    score_after = PredictionOneBatchPredictOperator(
        task_id="score_after",
        classifier_id=deploy.output["classifier_id"],
        input_data=str(DATA / "score.csv"),
        output_data="{{ params.output_dir }}/predictions_after.csv",
    )

    # One XCom, the whole record (the demo reads it), not one more per key.
    @task(multiple_outputs=False, trigger_rule="all_done")
    def summary(ti: Any = None) -> dict[str, Any]:
        """What happened, in one small record (the demo prints it) — also when the gate refused."""
        trained = ti.xcom_pull(task_ids="train") or {}
        retrained = ti.xcom_pull(task_ids="retrain") or {}
        switched = ti.xcom_pull(task_ids="switch") or {}
        scored = [ti.xcom_pull(task_ids=t) or {} for t in ("score_before", "score_after")]
        return {
            "model_id": trained.get("model_id"),
            "metrics_before": retrained.get("previous_metrics") or trained.get("metrics"),
            "metrics_after": retrained.get("metrics"),
            "rows_scored": sum(s.get("rows_scored", 0) for s in scored),
            "rows_scored_each": [s.get("rows_scored", 0) for s in scored],  # the same file, before and after
            "model_versions": [s.get("model_version") for s in scored],
            "switched": bool(switched.get("switched")),
            # The verdict (metric, both values, threshold), recorded on refusal too.
            "quality_gate": switched.get("quality_gate"),
        }

    score_before >> retrain
    switch >> score_after
    [switch, score_after] >> summary()
