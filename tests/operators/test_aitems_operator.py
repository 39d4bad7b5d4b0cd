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


def test_lineage_goes_from_the_service_to_each_model_trained(connections: EmulatorProcess) -> None:
    from types import SimpleNamespace

    from jsonschema import Draft202012Validator

    from airflow_provider_predone import lineage
    from airflow_provider_predone.operators.aitems import AitemsTrainOperator

    service = AitemsHook().create_service("op_shop_lineage")["serviceId"]
    store: dict[str, object] = {}
    context = {
        "task_state_store": SimpleNamespace(get=store.get, set=store.__setitem__, delete=lambda k: store.pop(k, None)),
        "ti": SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1),
    }
    operator = AitemsTrainOperator(
        task_id="train",
        service_id=service,
        train_types=["pop", "relatedItem"],
        deferrable=False,
        poll_interval=0.1,
        timeout=30,
    )
    result = operator.execute(context)  # type: ignore[arg-type]
    facets = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in facets.inputs] == [(f"aitems://{service}", "service")]
    assert [(d.namespace, d.name) for d in facets.outputs] == [
        (f"aitems://{service}", "pop"),
        (f"aitems://{service}", "relatedItem"),
    ]
    details = facets.run_facets["predone_job"].details
    assert details["versions"] == result["versions"]
    assert details["statuses"] == {"pop": "completed", "relatedItem": "completed"}
    schema = lineage.facet_schema(lineage.JOB_FACET)
    details_schema = schema["$defs"][lineage.JOB_FACET]["allOf"][1]["properties"]["details"]
    assert list(Draft202012Validator(details_schema).iter_errors(details)) == []
