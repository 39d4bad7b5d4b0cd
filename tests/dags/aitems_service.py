"""AitemsServiceOperator (deferrable) links three datasets; a sensor and a training use its result."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.aitems import AitemsServiceOperator, AitemsTrainOperator
from airflow_provider_predone.sensors.aitems import AitemsServiceSensor

with DAG(
    dag_id="aitems_service",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "name": Param(type="string"),
        "user": Param(type="string"),
        "item": Param(type="string"),
        "interaction": Param(type="string"),
        "description": Param("", type="string"),
    },
) as dag:
    service = AitemsServiceOperator(
        task_id="service",
        name="{{ params.name }}",
        user_dataset_id="{{ params.user }}",
        item_dataset_id="{{ params.item }}",
        interaction_dataset_id="{{ params.interaction }}",
        description="{{ params.description }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=30,
    )
    learnable = AitemsServiceSensor(
        task_id="learnable", service_id=service.output, deferrable=True, poke_interval=0.2, timeout=30
    )
    train = AitemsTrainOperator(
        task_id="train",
        service_id=service.output,  # the whole result: its service_id is taken
        train_types=["pop"],
        hp_config={"is_enabled": True, "item_top_n": "20000"},
        extra_hp_options={"not_yet_documented": 3},
        deferrable=False,
        poll_interval=0.2,
        timeout=30,
    )
    learnable >> train
