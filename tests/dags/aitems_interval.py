"""An interval service's cycle: start it, push new interactions, wait for the update (deferred), stop it."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.aitems import AitemsPushRowsOperator, AitemsScheduleOperator
from airflow_provider_predone.sensors.aitems import AitemsUpdateSensor

with DAG(
    dag_id="aitems_interval",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"service": Param(type="string"), "dataset": Param(type="string"), "data": Param(type="string")},
) as dag:
    start = AitemsScheduleOperator(
        task_id="start", service_id="{{ params.service }}", term="hour1", train_types=["pop"]
    )
    push = AitemsPushRowsOperator(
        task_id="push",
        service_id="{{ params.service }}",
        dataset_id="{{ params.dataset }}",
        dataset_type="interaction",
        data="{{ params.data }}",
        batch_size=5,
    )
    update = AitemsUpdateSensor(
        task_id="update",
        service_id="{{ params.service }}",
        train_type="pop",
        deferrable=True,
        poke_interval=0.2,
        timeout=60,
    )
    stop = AitemsScheduleOperator(task_id="stop", service_id="{{ params.service }}", action="stop")
    start >> push >> update >> stop
