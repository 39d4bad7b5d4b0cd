"""
Failures that waiting cannot heal, and one that can, each in a task with two retries: the
permanent ones must end ``failed`` on their first try, the transient one must be retried.

The tests set the connections (``wrong_secret``, ``unreachable``, ``service_typo``) and pass the
prediction API and files of the scoring task as params.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.aitems import AitemsTrainOperator
from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneListModelsOperator,
    PredictionOneRetrainOperator,
)

with DAG(
    dag_id="predone_permanent_errors",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    params={
        "classifier_id": Param("none", type="string"),
        "model_id": Param(1, type="integer"),
        "input": Param("none", type="string"),
        "output": Param("none", type="string"),
        "retrain_data": Param("none", type="string"),
    },
) as dag:
    PredictionOneListModelsOperator(task_id="wrong_secret_key", predone_conn_id="wrong_secret")
    AitemsTrainOperator(
        task_id="unknown_aitems_service",
        service_id="no-such-service",
        train_types=["pop"],
        deferrable=False,
        poll_interval=0.2,
    )
    PredictionOneBatchPredictOperator(
        task_id="missing_model_column",
        classifier_id="{{ params.classifier_id }}",
        input_data="{{ params.input }}",
        output_data="{{ params.output }}",
    )
    # The job fails at the service (the data lacks the target): the trigger's failure event is
    # turned into the error in execute_complete, after the task resumed.
    PredictionOneRetrainOperator(
        task_id="failed_retrain_job",
        model_id="{{ params.model_id }}",
        train_data="{{ params.retrain_data }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=60,
    )
    PredictionOneListModelsOperator(task_id="service_typo", predone_conn_id="service_typo")
    # Nothing listens there: a connection refused, after the hook's own retries, may pass.
    PredictionOneListModelsOperator(task_id="unreachable_service", predone_conn_id="unreachable")
