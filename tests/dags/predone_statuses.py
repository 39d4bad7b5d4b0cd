"""Operators and sensors that wait, told which statuses mean "running": any other fails at once.

The emulator's trainings go ``waiting`` → ``running`` → ``finished``; naming only ``running``
as running makes ``waiting`` a status outside every set, as an undocumented status of the real
service would be. Each wait has a 600 s timeout the tasks must not run into; the test
makes the jobs long enough for every task to see the status it must refuse.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_predone.operators.predone import PredictionOneTrainOperator
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
STRICT = {"running_statuses": ["running"]}  # "waiting", the first status seen, is outside every set
# Sensors may start late on a busy machine: for them neither "waiting" nor "running" is in a set.
STRICT_SENSE = {"running_statuses": ["job_running"]}

with DAG(
    dag_id="predone_statuses",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"data": Param(type="string")},
) as dag:
    for deferrable in (False, True):
        PredictionOneTrainOperator(
            task_id=f"train_strict_{'deferrable' if deferrable else 'blocking'}",
            train_data="{{ params.data }}/train.csv",
            model_name="strict",
            config=CONFIG,
            deferrable=deferrable,
            poll_interval=0.2,
            timeout=600,
            **STRICT,
        )
    for deferrable in (False, True):
        suffix = "deferrable" if deferrable else "poke"
        lenient = PredictionOneTrainOperator(
            task_id=f"train_lenient_{suffix}",
            train_data="{{ params.data }}/train.csv",
            model_name=f"lenient_{suffix}",
            config=CONFIG,
            wait_for_completion=False,
        )
        lenient >> PredictionOneTrainSensor(
            task_id=f"sense_strict_{suffix}",
            external_process_id=lenient.output["external_process_id"],
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=600,
            **STRICT_SENSE,
        )
