"""
Train a Prediction One model and keep its result.

Uploads the training and evaluation data with column types, starts training, waits in the
triggerer (deferrable), downloads and safely extracts the result zip. The task returns the
``model_id`` (for retraining and deployment) and the evaluation metrics.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import PredictionOneTrainOperator

DATA = Path(__file__).parent / "data"

# [START howto_operator_predone_train]
PURCHASE_CONFIG = {
    "tc": "purchased_premium",  # target column
    "tt": "binary_classification",  # prediction type
    "tv": "yes",  # the positive value
    "cv": "0",  # cross-validation: automatic
    "im": "false",  # class imbalance correction
}
COLUMN_TYPES = {"customer_id": "string", "signup_date": "date", "age": "float"}

with DAG(
    dag_id="predone_train",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"result_dir": Param(str(Path(tempfile.gettempdir()) / "predone-results"), type="string")},
    tags=["prediction-one", "example"],
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "train.csv"),  # or an object storage URL: "s3://bucket/train.csv"
        eval_data=str(DATA / "eval.csv"),
        column_info=COLUMN_TYPES,
        model_name="premium_purchase",
        config=PURCHASE_CONFIG,
        result_dir="{{ params.result_dir }}",
        deferrable=True,
        poll_interval=5,
        timeout=3600,
    )
# [END howto_operator_predone_train]
