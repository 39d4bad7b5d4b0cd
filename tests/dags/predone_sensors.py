"""Sensors on a finished and a failed training (ids from the run's conf), deferrable and poking."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.sensors.aitems import AitemsTrainingSensor
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor

FAST = {"poke_interval": 0.2, "timeout": 30}

with DAG(
    dag_id="predone_sensors",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "finished": Param(type="string"),
        "failed": Param(type="string"),
        "service": Param(type="string"),
        "pop": Param(type="string"),
    },
) as dag:
    for mode, deferrable in (("deferrable", True), ("poke", False)):
        PredictionOneTrainSensor(
            task_id=f"finished_{mode}", external_process_id="{{ params.finished }}", deferrable=deferrable, **FAST
        )
        PredictionOneTrainSensor(
            task_id=f"failed_{mode}", external_process_id="{{ params.failed }}", deferrable=deferrable, **FAST
        )
        AitemsTrainingSensor(
            task_id=f"aitems_failed_{mode}",
            service_id="{{ params.service }}",
            train_type="pop",
            version="{{ params.pop }}",
            deferrable=deferrable,
            **FAST,
        )
