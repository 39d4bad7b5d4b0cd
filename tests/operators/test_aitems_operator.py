"""AitemsTrainOperator, deferrable and blocking, against the emulator."""

from __future__ import annotations

from helpers import DAGS, run_dag

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.aitems import AitemsHook


def test_trainings_complete(connections: EmulatorProcess, airflow_db) -> None:
    service = AitemsHook().create_service("op_shop_ok")["serviceId"]
    result = run_dag(DAGS, "aitems_operator", service=service)
    assert result.states == {"train_deferrable": "success", "train_blocking": "success"}
    trained = result.xcom("train_deferrable")
    assert trained["statuses"] == {"pop": "completed", "relatedItem": "completed"}
    assert result.xcom("train_blocking")["statuses"] == {"personalRecommend": "completed"}
    assert connections.state()["aitems_trainings_started"] == 3


def test_a_failed_type_fails_the_task(connections: EmulatorProcess, airflow_db) -> None:
    service = AitemsHook().create_service("op_shop_fail")["serviceId"]
    result = run_dag(DAGS, "aitems_operator", service=service, description="[emulator-fail:refinedFailed:pop]")
    assert result.states == {"train_deferrable": "failed", "train_blocking": "success"}
    assert result.xcom("train_deferrable") is None
