"""AitemsDatasetOperator: a local file uploaded and registered (deferrable); files already in a bucket (blocking)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.aitems import AitemsDatasetOperator
from airflow_provider_predone.sensors.aitems import AitemsDatasetSensor

with DAG(
    dag_id="aitems_dataset",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "bucket": Param(type="string"),
        "users": Param(type="string"),
        "description": Param("", type="string"),
    },
) as dag:
    AitemsDatasetOperator(
        task_id="users_from_file",
        dataset_type="user",
        name="users_day1",
        schema_name="shop_users",
        bucket="{{ params.bucket }}",
        key="incoming/",
        data="{{ params.users }}",
        description="{{ params.description }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=60,
    )
    AitemsDatasetOperator(
        task_id="clicks_in_bucket",
        dataset_type="interaction",
        name="clicks_in_bucket",
        schema_name="shop_clicks",
        fields=[
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
            {"name": "EVENT", "type": "string", "categorical": True},
        ],
        bucket="{{ params.bucket }}",
        key="clicks/",
        deferrable=False,
        poll_interval=0.2,
        timeout=60,
    )

with DAG(
    dag_id="aitems_dataset_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"good": Param(type="string"), "bad": Param(type="string")},
) as sensor_dag:
    for which in ("good", "bad"):
        for deferrable in (True, False):
            AitemsDatasetSensor(
                task_id=f"{which}_{'deferrable' if deferrable else 'poke'}",
                dataset_id=f"{{{{ params.{which} }}}}",
                deferrable=deferrable,
                poke_interval=0.2,
                timeout=60,
            )
