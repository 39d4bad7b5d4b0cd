"""
Sensors on a finished and a failed training (ids from the run's conf): deferrable, poking,
and ended in the triggerer.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.sensors.aitems import AitemsTrainingSensor
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor

FAST = {"poke_interval": 0.2, "timeout": 60}

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
            version="{{ params['pop'] }}",  # params.pop is the dict's method
            deferrable=deferrable,
            **FAST,
        )

# Sensors whose trigger ends the task (no resume on a worker), on trainings still running at
# their first poke; one after the other, as dag.test() runs them anyway.
with DAG(
    dag_id="predone_sensors_ended_in_trigger",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"finished": Param(type="string"), "failed": Param(type="string")},
) as ended_in_trigger:
    (
        PredictionOneTrainSensor(
            task_id="finished",
            external_process_id="{{ params.finished }}",
            deferrable=True,
            end_from_trigger=True,
            **FAST,
        )
        >> PredictionOneTrainSensor(
            task_id="failed", external_process_id="{{ params.failed }}", deferrable=True, end_from_trigger=True, **FAST
        )
    )
