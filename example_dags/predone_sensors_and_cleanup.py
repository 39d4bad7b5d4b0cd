"""
Start Prediction One jobs without waiting, wait for them with sensors, then clean up.

Each operator returns as soon as its job has started (``wait_for_completion=False``) and a
deferrable sensor waits for it in the triggerer. Useful when the wait belongs to another
task (its own timeout, retries or SLA) or when the job is started by something else and
only its id is known. At the end the prediction API and the model are deleted again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_predone.operators.predone import (
    PredictionOneCreatePredictionApiOperator,
    PredictionOneDeleteModelOperator,
    PredictionOneDeletePredictionApiOperator,
    PredictionOneListModelsOperator,
    PredictionOneRetrainOperator,
    PredictionOneTrainOperator,
)
from airflow_provider_predone.sensors.predone import (
    PredictionOnePredictionApiSensor,
    PredictionOneRetrainSensor,
    PredictionOneTrainSensor,
)

DATA = Path(__file__).parent / "data"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
MODEL_NAME = "premium_purchase_sensors"

with DAG(
    dag_id="predone_sensors_and_cleanup",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": 5},
    tags=["prediction-one", "example"],
) as dag:
    # [START howto_sensor_predone_train]
    start_training = PredictionOneTrainOperator(
        task_id="start_training",
        train_data=str(DATA / "train.csv"),
        model_name=MODEL_NAME,
        config=CONFIG,
        wait_for_completion=False,  # returns the external_process_id once training started
    )
    wait_for_training = PredictionOneTrainSensor(
        task_id="wait_for_training",
        external_process_id=start_training.output["external_process_id"],
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    # [END howto_sensor_predone_train]

    # [START howto_operator_predone_list_models]
    list_models = PredictionOneListModelsOperator(task_id="list_models")

    @task
    def newest_model_id(models: Any, name: str = MODEL_NAME) -> int:
        """The id of the newest model called ``name`` in ``models``, the list of model dicts."""
        # ``Any``: at parse time the argument is list_models' XComArg, at run time the list.
        return max(int(m["model_id"]) for m in models if m["name"] == name)

    model_id = newest_model_id(list_models.output)
    # [END howto_operator_predone_list_models]

    # [START howto_sensor_predone_prediction_api]
    start_deploy = PredictionOneCreatePredictionApiOperator(
        task_id="start_deploy",
        model_id=model_id,
        wait_for_completion=False,  # returns the classifier_id while the API is still building
    )
    wait_for_prediction_api = PredictionOnePredictionApiSensor(
        task_id="wait_for_prediction_api",
        classifier_id=start_deploy.output["classifier_id"],
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    # [END howto_sensor_predone_prediction_api]

    # [START howto_sensor_predone_retrain]
    start_retrain = PredictionOneRetrainOperator(
        task_id="start_retrain",
        model_id=model_id,
        train_data=str(DATA / "new_month.csv"),
        wait_for_completion=False,  # returns the retrain_job_id once the upload started the job
    )
    wait_for_retrain = PredictionOneRetrainSensor(
        task_id="wait_for_retrain",
        retrain_job_id=start_retrain.output["retrain_job_id"],
        model_id=start_retrain.output["model_id"],
        deferrable=True,
        poke_interval=2,
        timeout=6 * 3600,
    )
    # [END howto_sensor_predone_retrain]

    # [START howto_operator_predone_delete]
    delete_prediction_api = PredictionOneDeletePredictionApiOperator(
        task_id="delete_prediction_api",
        classifier_id=start_deploy.output["classifier_id"],
        trigger_rule="all_done",  # clean up also when something above failed
    )
    delete_model = PredictionOneDeleteModelOperator(
        task_id="delete_model",
        model_id=model_id,
        trigger_rule="all_done",
        missing_ok=True,  # already gone counts as done (the default)
    )
    # [END howto_operator_predone_delete]

    wait_for_training >> list_models
    wait_for_prediction_api >> start_retrain
    wait_for_retrain >> delete_prediction_api >> delete_model
