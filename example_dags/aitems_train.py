"""
Train NAVER Cloud AiTEMS recommendation models and wait for them in the triggerer.

Creates the service if it does not exist yet, requests a training per type (the operator
finds each type's new version), waits until every type is ``completed``, then shows the
sensor waiting for one type on its own.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_predone.operators.aitems import AitemsTrainOperator
from airflow_provider_predone.sensors.aitems import AitemsTrainingSensor

with DAG(
    dag_id="aitems_train",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2},
    tags=["aitems", "example"],
) as dag:

    @task
    def ensure_service(name: str = "shop_recommend") -> str:
        """The id of the batch service called ``name``, creating it on first use."""
        from airflow_provider_predone.hooks.aitems import AitemsHook

        hook = AitemsHook()
        existing = next((s for s in hook.list_services() if s.get("name") == name), None)
        service = existing or hook.create_service(name, "batch", "example recommendations")
        return str(service["serviceId"])

    service_id = ensure_service()

    # [START howto_operator_aitems_train]
    train = AitemsTrainOperator(
        task_id="train",
        service_id=service_id,
        train_types=["personalRecommend", "relatedItem", "pop"],
        hp_config={"is_enabled": False},
        description="nightly training",
        deferrable=True,
        poll_interval=2,
        timeout=6 * 3600,
    )
    # [END howto_operator_aitems_train]

    # [START howto_sensor_aitems_training]
    wait_for_pop = AitemsTrainingSensor(
        task_id="wait_for_pop",
        service_id=service_id,
        train_type="pop",
        version="{{ ti.xcom_pull(task_ids='train')['versions']['pop'] }}",
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    # [END howto_sensor_aitems_training]

    train >> wait_for_pop
