"""AitemsTrainOperator on a given service; the description may ask the emulator for a failure."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.aitems import AitemsTrainOperator

with DAG(
    dag_id="aitems_operator",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"service": Param(type="string"), "description": Param("", type="string")},
) as dag:
    for deferrable in (True, False):
        AitemsTrainOperator(
            task_id="train_deferrable" if deferrable else "train_blocking",
            service_id="{{ params.service }}",
            train_types=["pop", "relatedItem"] if deferrable else ["personalRecommend"],
            description="{{ params.description }}",
            deferrable=deferrable,
            poll_interval=0.2,
            timeout=30,
        )
