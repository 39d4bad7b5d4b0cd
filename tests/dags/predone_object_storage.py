"""Training, retraining and scoring with data in object storage (``memory://`` in the tests)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneTrainOperator,
)

FAST = {"poll_interval": 0.2, "timeout": 60}

with DAG(dag_id="predone_object_storage", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data="memory://bucket/in/train.csv",
        eval_data="memory://bucket/in/eval.csv",
        model_name="object_storage",
        config={"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"},
        deferrable=False,
        **FAST,
    )
    deploy = PredictionOneCreatePredictionApiOperator(
        task_id="deploy", model_id=train.output["model_id"], deferrable=False, **FAST
    )
    PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=deploy.output["classifier_id"],
        input_data="memory://bucket/in/score.csv",
        output_data="memory://bucket/out/predictions.csv",
        with_reasons=True,
    )
    PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data="memory://bucket/in/new_month.csv",
        eval_data="memory://bucket/in/new_month_eval.csv",
        deferrable=False,
        **FAST,
    )
