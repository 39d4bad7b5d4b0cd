"""The AiTEMS recommendations lookup of the emulator: answers from the service's trained state."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_support import AitemsClient

from airflow_provider_predone.emulator import EmulatorProcess

#: u1 and u2 share i1; u2 and u3 share i2; i3 is the most popular item.
ROWS = [
    ["u1", "i1"],
    ["u2", "i1"],
    ["u2", "i2"],
    ["u2", "i3"],
    ["u3", "i2"],
    ["u3", "i3"],
    ["u4", "i3"],
    ["u4", "i4"],
]


def _service(aitems: AitemsClient, name: str = "shop_lookup") -> str:
    response = aitems.request("POST", "/api/v1/services", {"name": name, "type": "batch"})
    assert response.status_code == 200, response.text
    return str(response.json()["serviceId"])


def _train(emulator: EmulatorProcess, service_id: str, rows: list[list[str]], **body: Any) -> dict[str, Any]:
    """The test control: the service's interactions, and trainings completed now."""
    url = f"{emulator.url}/_emulator/aitems/services/{service_id}/interactions"
    response = requests.post(url, json={"rows": rows, **body}, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _lookup(aitems: AitemsClient, service_id: str, query: str) -> requests.Response:
    return aitems.request("GET", f"/api/v1/services/{service_id}/infers/lookup?{query}")


def test_lookups_answer_from_the_trained_interactions(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    service_id = _service(aitems)
    versions = _train(emulator, service_id, ROWS, trained=["personalRecommend", "relatedItem", "pop"])["versions"]
    assert set(versions) == {"personalRecommend", "relatedItem", "pop"}
    # The trainings the control completed are listed as NAVER lists them, with recommendations.
    listed = aitems.request("GET", f"/api/v1/services/{service_id}/trains?isRecent=true").json()["trains"]
    assert {t["type"]: (t["version"], t["status"], t["inference"]) for t in listed} == {
        t: (v, "completed", True) for t, v in versions.items()
    }

    # u1's neighbour u2 viewed i2 and i3; the rest is topped up with the popular items.
    personal = _lookup(aitems, service_id, "type=personalRecommend&targetId=u1")
    assert personal.status_code == 200, personal.text
    assert personal.json() == {"field": "ITEM_ID", "values": ["i3", "i2", "i4"]}
    # u4's own items are never recommended back.
    assert "i3" not in _lookup(aitems, service_id, "type=personalRecommend&targetId=u4").json()["values"]
    related = _lookup(aitems, service_id, "type=relatedItem&targetId=i1").json()
    assert related == {"field": "ITEM_ID", "values": ["i3", "i2", "i4"]}  # a tie: the more popular first
    assert _lookup(aitems, service_id, "type=pop").json() == {"field": "ITEM_ID", "values": ["i3", "i1", "i2", "i4"]}
    # Deterministic: the same question, the same answer.
    assert _lookup(aitems, service_id, "type=personalRecommend&targetId=u1").json() == personal.json()


def test_a_target_the_model_never_saw_gets_an_empty_list(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    service_id = _service(aitems)
    _train(emulator, service_id, ROWS, trained=["personalRecommend", "relatedItem"])
    for query in ("type=personalRecommend&targetId=nobody", "type=relatedItem&targetId=no-such-item"):
        answer = _lookup(aitems, service_id, query)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"field": "ITEM_ID", "values": []}


def test_the_hp_config_caps_the_recommendations(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    service_id = _service(aitems)
    rows = [[f"u{u}", f"i{(u + k) % 50}"] for u in range(40) for k in range(5)]
    _train(emulator, service_id, rows, trained=["personalRecommend"], hpConfig={"max_user_recommend_top": 3})
    assert len(_lookup(aitems, service_id, "type=personalRecommend&targetId=u1").json()["values"]) == 3
    _train(emulator, service_id, rows, trained=["pop"])
    assert len(_lookup(aitems, service_id, "type=pop").json()["values"]) == 44  # every item viewed (fewer than 100)


@pytest.mark.parametrize(
    ("query", "status", "details"),
    [
        ("type=personalRecommend", 400, "targetId is required"),
        ("type=everything&targetId=u1", 400, "type must be one of"),
        ("type=relatedItem&targetId=i1", 404, "no completed relatedItem training"),
    ],
)
def test_bad_lookups_get_the_gateway_error_shape(
    emulator: EmulatorProcess, aitems: AitemsClient, query: str, status: int, details: str
) -> None:
    service_id = _service(aitems)
    _train(emulator, service_id, ROWS, trained=["personalRecommend"])
    answer = _lookup(aitems, service_id, query)
    assert answer.status_code == status
    assert details in answer.json()["error"]["details"]


def test_a_lookup_is_signed_and_its_service_must_exist(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    service_id = _service(aitems)
    _train(emulator, service_id, ROWS, trained=["pop"])
    unsigned = requests.get(f"{emulator.url}/api/v1/services/{service_id}/infers/lookup?type=pop", timeout=10)
    assert unsigned.status_code == 401
    assert _lookup(aitems, "nosuchservice", "type=pop").status_code == 404


def test_lookups_get_the_emulators_faults(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    service_id = _service(aitems)
    _train(emulator, service_id, ROWS, trained=["pop"])
    emulator.configure(fault_rate=1.0, fault_kinds="http_503")
    try:
        assert _lookup(aitems, service_id, "type=pop").status_code == 503
    finally:
        emulator.configure(fault_rate=0.0, fault_kinds="")
    assert _lookup(aitems, service_id, "type=pop").status_code == 200


def test_the_test_controls_are_off_without_test_controls(fresh_emulator: Any) -> None:
    plain = fresh_emulator(test_controls=False)
    answer = requests.post(f"{plain.url}/_emulator/aitems/services/x/interactions", json={"rows": []}, timeout=10)
    assert answer.status_code == 404
    assert requests.get(f"{plain.url}/_emulator/aitems/lookups", timeout=10).status_code == 404


def test_a_trained_service_answers_from_its_linked_interaction_dataset(
    connections: EmulatorProcess, bucket: str, tmp_path: Any
) -> None:
    """The whole way: files in object storage, datasets, a linked service, a training, lookups."""
    from aitems_interval import FILES, wait_until

    from airflow_provider_predone.hooks.aitems import AitemsHook
    from airflow_provider_predone.protocol import aitems as api

    hook = AitemsHook()
    dataset_ids = {}
    for kind, text in FILES.items():  # u1 and u3 viewed i1, u2 viewed i2
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        hook.object_storage.upload(path, bucket, f"lookup/{kind}.csv")
        hook.create_schema(
            kind, f"lookup_{kind[:5]}", api.fields_from_header(kind, text.split("\n")[0].split(","), kind)
        )
        dataset_ids[kind] = str(
            hook.create_dataset(kind, f"lookup-{kind}", f"lookup_{kind[:5]}", bucket, f"lookup/{kind}.csv")["datasetId"]
        )
    for dataset_id in dataset_ids.values():
        wait_until("an enabled dataset", lambda d=dataset_id: hook.get_dataset(d)["status"] == "enable")
    service_id = str(hook.create_service("shop_lookup_linked")["serviceId"])
    hook.link_datasets(service_id, dataset_ids)
    wait_until("a learnable service", lambda: hook.get_service(service_id)["status"] == "learnable")
    hook.request_training(service_id, ["personalRecommend", "pop"])
    connections.finish_jobs()
    assert hook.lookup(service_id, "pop") == {"field": "ITEM_ID", "values": ["i1", "i2"]}
    assert hook.lookup(service_id, "personalRecommend", "u1") == {"field": "ITEM_ID", "values": ["i2"]}
    assert hook.lookup(service_id, "personalRecommend", "u9") == {"field": "ITEM_ID", "values": []}
