"""
The DAG the reliability tests run on a real Airflow (scheduler, LocalExecutor, triggerer):
train → deploy a prediction API → retrain → switch, deferrable, with quick task retries;
plus a masking probe that logs a secret on purpose (a positive control for the log checks).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator

from airflow_provider_predone.operators.predone import (
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
)

DATA = Path(__file__).resolve().parent.parent.parent / "example_dags" / "data"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


class MaskingProbeOperator(BaseOperator):
    """Logs a presigned URL the hook masked, then defers to a trigger that logs a masked API key."""

    def execute(self, context: Any) -> None:
        from masking_probe import MaskingProbeTrigger  # importable in the test cluster only

        from airflow_provider_predone.hooks.predone import PredictionOneHook

        url = PredictionOneHook().get_upload_urls().learn_data_set_upload_url
        self.log.info("masking probe (task): an upload URL is %s", url)
        self.defer(trigger=MaskingProbeTrigger(), method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        self.log.info("masking probe finished: %s", event)


with DAG(
    dag_id="reliability_cluster",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1), "deferrable": True, "poll_interval": 0.5},
    tags=["tests"],
) as dag:
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "train.csv"),
        eval_data=str(DATA / "eval.csv"),
        model_name="reliability",
        config=CONFIG,
    )
    deploy = PredictionOneCreatePredictionApiOperator(task_id="deploy", model_id=train.output["model_id"])
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data=str(DATA / "new_month.csv"),
        eval_data=str(DATA / "new_month_eval.csv"),
    )
    switch = PredictionOneSwitchModelOperator(
        task_id="switch", retrain_job_id=retrain.output["retrain_job_id"], model_id=retrain.output["model_id"]
    )
    MaskingProbeOperator(task_id="masking_probe")
    train >> deploy >> retrain >> switch
