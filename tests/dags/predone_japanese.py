"""Japanese CSVs as Excel saves them (cp932), through every operator that reads a CSV.

The test writes the files (``params.data``) and reads the outputs (``params.out``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneTrainOperator,
)

WAIT = {"poll_interval": 0.2, "timeout": 60}

with DAG(
    dag_id="predone_japanese",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"data": Param(type="string"), "out": Param(type="string")},
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data="{{ params.data }}/学習データ.csv",
        eval_data="{{ params.data }}/評価データ.csv",
        model_name="購入予測",
        config={"tc": "プレミアム購入", "tt": "binary_classification", "tv": "はい"},
        encoding="cp932",
        **WAIT,
    )
    prediction_api = PredictionOneCreatePredictionApiOperator(
        task_id="prediction_api", model_id=train.output["model_id"], **WAIT
    )
    score = PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=prediction_api.output["classifier_id"],
        input_data="{{ params.data }}/予測対象.csv",
        output_data="{{ params.out }}/予測結果.csv",
        echo_input=True,
        encoding="shift_jis",
    )
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data="{{ params.data }}/今月.csv",
        eval_data="{{ params.data }}/今月評価.csv",
        encoding="cp932",
        **WAIT,
    )
    train >> prediction_api >> score >> retrain
