"""Every Prediction One operator and sensor, deferrable and not, in one DAG for the tests.

Inputs come from the run's ``conf`` (``params``) so the tests point it at their own files.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneDeleteModelOperator,
    PredictionOneDeletePredictionApiOperator,
    PredictionOneListDataSetsOperator,
    PredictionOneListModelsOperator,
    PredictionOneListPredictionApisOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
    metric_gate,
)
from airflow_provider_predone.sensors.predone import (
    PredictionOnePredictionApiSensor,
    PredictionOneRetrainSensor,
    PredictionOneTrainSensor,
)

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
FAST = {"poll_interval": 0.2, "timeout": 60}
SENSE = {"poke_interval": 0.2, "timeout": 60}


def refuse_everything(result: object) -> bool:
    return False


with DAG(
    dag_id="predone_operators",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"data": Param(type="string"), "out": Param(type="string")},
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train_deferrable",
        train_data="{{ params.data }}/train.csv",
        eval_data="{{ params.data }}/eval.csv",
        column_info={"customer_id": "string", "signup_date": "date", "age": "float"},
        model_name="ops",
        config=CONFIG,
        result_dir="{{ params.out }}/train",
        deferrable=True,
        **FAST,
    )
    train_blocking = PredictionOneTrainOperator(
        task_id="train_blocking",
        train_data="{{ params.data }}/train.csv",
        model_name="ops_blocking",
        config=CONFIG,
        deferrable=False,
        **FAST,
    )
    train_no_wait = PredictionOneTrainOperator(
        task_id="train_no_wait",
        train_data="{{ params.data }}/train.csv",
        model_name="ops_no_wait",
        config=CONFIG,
        wait_for_completion=False,
    )
    sense_train = PredictionOneTrainSensor(
        task_id="sense_train_deferrable",
        external_process_id=train_no_wait.output["external_process_id"],
        deferrable=True,
        **SENSE,
    )
    sense_train_poke = PredictionOneTrainSensor(
        task_id="sense_train_poke",
        external_process_id=train_no_wait.output["external_process_id"],
        deferrable=False,
        **SENSE,
    )
    deploy = PredictionOneCreatePredictionApiOperator(
        task_id="deploy_no_wait", model_id=train.output["model_id"], wait_for_completion=False
    )
    sense_api = PredictionOnePredictionApiSensor(
        task_id="sense_prediction_api", classifier_id=deploy.output["classifier_id"], deferrable=True, **SENSE
    )
    deploy_blocking = PredictionOneCreatePredictionApiOperator(
        task_id="deploy_blocking", model_id=train_blocking.output["model_id"], deferrable=False, **FAST
    )
    score = PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=deploy.output["classifier_id"],
        input_data="{{ params.data }}/score.csv",
        output_data="{{ params.out }}/scores.csv",
        with_reasons=True,
        id_column="customer_id",
        concurrency=4,
    )
    retrain = PredictionOneRetrainOperator(
        task_id="retrain_no_wait",
        model_id=train.output["model_id"],
        train_data="{{ params.data }}/new_month.csv",
        eval_data="{{ params.data }}/new_month_eval.csv",
        upload_filename="新しい月.zip",
        wait_for_completion=False,
    )
    sense_retrain = PredictionOneRetrainSensor(
        task_id="sense_retrain",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        deferrable=True,
        **SENSE,
    )
    refused = PredictionOneSwitchModelOperator(
        task_id="switch_refused",
        retrain_job_id=retrain.output,
        quality_gate=refuse_everything,
    )
    switch = PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output,
        quality_gate=metric_gate("auc"),
        result_dir="{{ params.out }}/gate",
        trigger_rule="all_done",
    )
    listed = [
        PredictionOneListModelsOperator(task_id="list_models"),
        PredictionOneListDataSetsOperator(task_id="list_data_sets"),
        PredictionOneListPredictionApisOperator(task_id="list_prediction_apis"),
    ]
    delete_api = PredictionOneDeletePredictionApiOperator(
        task_id="delete_prediction_api", classifier_id=deploy_blocking.output["classifier_id"]
    )
    delete_model = PredictionOneDeleteModelOperator(task_id="delete_model", model_id=train_blocking.output["model_id"])
    delete_again = PredictionOneDeleteModelOperator(
        task_id="delete_model_again", model_id=train_blocking.output["model_id"]
    )

    sense_api >> score >> retrain >> sense_retrain >> refused >> switch
    switch >> listed >> delete_api >> delete_model >> delete_again
