"""The AiTEMS API of the emulator: services, training requests, listing and viewing trainings."""

from __future__ import annotations

from typing import Any

from emulator_support import AitemsClient, poll

from airflow_provider_predone.emulator import EmulatorProcess

FAILED = {"requestFailed", "refinedFailed", "learningFailed"}


def _create_service(aitems: AitemsClient, name: str) -> str:
    response = aitems.request("POST", "/api/v1/services", {"name": name, "description": "shop", "type": "batch"})
    assert response.status_code == 200, response.text
    service = response.json()
    assert (service["name"], service["type"], service["status"]) == (name, "batch", "datasetRequired")
    return str(service["serviceId"])


def _request_training(aitems: AitemsClient, service_id: str, types: list[str], description: str) -> None:
    body = {"types": types, "description": description, "hpConfig": {"is_enabled": True, "item_top_n": 50}}
    response = aitems.request("POST", f"/api/v1/services/{service_id}", body)
    assert response.status_code == 200, response.text
    assert response.json()["serviceId"] == service_id


def _recent(aitems: AitemsClient, service_id: str) -> dict[str, dict[str, Any]]:
    uri = f"/api/v1/services/{service_id}/trains?offset=0&limit=1000&isRecent=true"
    listing = aitems.request("GET", uri).json()
    assert (listing["offset"], listing["limit"]) == (0, 1000)
    return {train["type"]: train for train in listing["trains"]}


def _view_until_done(aitems: AitemsClient, service_id: str, train: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    uri = f"/api/v1/services/{service_id}/trains/{train['type']}/versions/{train['version']}"
    seen: list[str] = []

    def view() -> dict[str, Any]:
        answer: dict[str, Any] = aitems.request("GET", uri).json()
        seen.append(answer["status"])
        return answer

    final = poll(view, lambda answer: answer["status"] == "completed" or answer["status"] in FAILED)
    return final, seen


def test_training_is_requested_listed_and_viewed_until_completed(
    emulator: EmulatorProcess, aitems: AitemsClient
) -> None:
    service_id = _create_service(aitems, "shop_recs")
    assert aitems.request("GET", f"/api/v1/services/{service_id}").json()["serviceId"] == service_id
    _request_training(aitems, service_id, ["personalRecommend", "relatedItem"], "first")
    _request_training(aitems, service_id, ["personalRecommend", "pop"], "second")
    everything = aitems.request("GET", f"/api/v1/services/{service_id}/trains").json()["trains"]
    assert [t["type"] for t in everything] == ["pop", "personalRecommend", "relatedItem", "personalRecommend"]
    recent = _recent(aitems, service_id)
    assert set(recent) == {"personalRecommend", "relatedItem", "pop"}
    assert recent["personalRecommend"]["description"] == "second"
    assert recent["pop"]["hpConfig"] == {"is_enabled": True, "item_top_n": 50}
    page = aitems.request("GET", f"/api/v1/services/{service_id}/trains?offset=1&limit=2").json()["trains"]
    assert [t["version"] for t in page] == [t["version"] for t in everything[1:3]]

    final, seen = _view_until_done(aitems, service_id, recent["pop"])
    assert final["status"] == "completed"
    assert final["inference"] is True
    assert set(seen) <= {"requesting", "learning", "completed"}
    assert seen[0] in ("requesting", "learning")
    assert (final["serviceId"], final["type"], final["version"]) == (service_id, "pop", recent["pop"]["version"])
    assert set(final) == {
        "serviceId",
        "type",
        "hpConfig",
        "version",
        "description",
        "status",
        "createdDate",
        "inference",
    }
    assert emulator.state()["aitems_trainings_started"] == 4


def test_a_description_marker_makes_a_training_fail(aitems: AitemsClient) -> None:
    service_id = _create_service(aitems, "_failing")
    _request_training(aitems, service_id, ["personalRecommend", "pop"], "nightly [emulator-fail:learningFailed]")
    recent = _recent(aitems, service_id)
    for train in recent.values():
        final, _ = _view_until_done(aitems, service_id, train)
        assert (final["status"], final["inference"]) == ("learningFailed", False)

    _request_training(aitems, service_id, ["personalRecommend", "pop"], "[emulator-fail:refinedFailed:pop]")
    recent = _recent(aitems, service_id)
    assert _view_until_done(aitems, service_id, recent["pop"])[0]["status"] == "refinedFailed"
    assert _view_until_done(aitems, service_id, recent["personalRecommend"])[0]["status"] == "completed"
