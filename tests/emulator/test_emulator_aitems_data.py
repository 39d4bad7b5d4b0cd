"""The emulator's AiTEMS schemas and datasets: NAVER's validation rules, the dataset lifecycle
(its files read from a real S3-compatible server while ``processing``), the gateway's error body,
and the throttle and clock test controls."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_support import AitemsClient, poll
from object_storage import ObjectStorageServer

from airflow_provider_predone.emulator import EmulatorProcess

USER_FIELDS = [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int", "categorical": True}]
CLICK_FIELDS = [
    {"name": "USER_ID", "type": "string"},
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"},
]


def _schema(aitems: AitemsClient, dataset_type: str, name: str, fields: list[dict[str, Any]]) -> Any:
    body = {"datasetType": dataset_type, "name": name, "fields": fields}
    return aitems.request("POST", "/api/v1/schemas", body)


def _dataset(
    aitems: AitemsClient, kind: str, name: str, schema: str, bucket: str, key: str, description: str = ""
) -> str:
    body = {
        "type": kind,
        "name": name,
        "schemaName": schema,
        "description": description,
        "osInfo": {"region": "KR", "bucket": bucket, "key": key},
    }
    response = aitems.request("POST", "/api/v1/datasets", body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "waiting"
    return str(response.json()["datasetId"])


def _until_done(aitems: AitemsClient, dataset_id: str) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []

    def view() -> dict[str, Any]:
        answer: dict[str, Any] = aitems.request("GET", f"/api/v1/datasets/{dataset_id}").json()
        seen.append(answer["status"])
        return answer

    return poll(view, lambda answer: answer["status"] not in ("waiting", "processing")), seen


def _error(response: Any) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["errorCode"], error["details"]


@pytest.mark.parametrize(
    ("dataset_type", "name", "fields", "details"),
    [
        ("user", "ab", USER_FIELDS, "invalid schema name"),
        ("user", "9users", USER_FIELDS, "invalid schema name"),
        ("users", "users", USER_FIELDS, "datasetType must be one of user, item, interaction"),
        ("user", "users", USER_FIELDS[1:], "the user schema requires the field USER_ID"),
        ("interaction", "clicks", CLICK_FIELDS[:2], "the interaction schema requires the field TIMESTAMP"),
        (
            "interaction",
            "clicks",
            [*CLICK_FIELDS[:2], {"name": "TIMESTAMP", "type": "int"}],
            "field TIMESTAMP must be of type long",
        ),
        ("user", "users", [{"name": "USER_ID", "type": "text"}], "fields[0].type must be one of"),
        ("user", "users", USER_FIELDS * 2, "field names must be unique"),
    ],
)
def test_schemas_are_validated_as_naver_documents(
    emulator: EmulatorProcess, aitems: AitemsClient, dataset_type: str, name: str, fields: Any, details: str
) -> None:
    for uri in ("/api/v1/schemas", "/api/v1/schemas/validation-check"):
        response = aitems.request("POST", uri, {"datasetType": dataset_type, "name": name, "fields": fields})
        status, code, message = _error(response)
        assert (status, code) == (400, "100")
        assert message.startswith(details)


def test_schema_lifecycle(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    default = aitems.request("GET", "/api/v1/schemas/default?datasetType=interaction").json()
    assert default["fields"] == CLICK_FIELDS
    assert _schema(aitems, "user", "shop-users", USER_FIELDS).status_code == 200
    assert _schema(aitems, "interaction", "clicks", CLICK_FIELDS).status_code == 200
    assert _error(_schema(aitems, "user", "shop-users", USER_FIELDS))[2] == "a schema with this name already exists"
    listed = aitems.request("GET", "/api/v1/schemas?datasetType=user&offset=0&limit=10").json()
    assert [s["name"] for s in listed["schemas"]] == ["shop-users"]
    assert aitems.request("PUT", "/api/v1/schemas/clicks", {"content": "views"}).json()["description"] == "views"
    assert aitems.request("DELETE", "/api/v1/schemas/clicks").json() == {"result": "ok"}
    assert _error(aitems.request("GET", "/api/v1/schemas/clicks")) == (404, "300", "schema not found")


def test_a_good_dataset_goes_waiting_processing_enable(
    emulator: EmulatorProcess, aitems: AitemsClient, object_storage_server: ObjectStorageServer, bucket: str
) -> None:
    s3 = object_storage_server.client()
    s3.put_object(Bucket=bucket, Key="users/part-1.csv", Body=b"\xef\xbb\xbfUSER_ID,AGE\nu1,31\nu2,\n")
    s3.put_object(Bucket=bucket, Key="users/part-2.csv", Body=b"USER_ID,AGE\nu3,45\n")
    _schema(aitems, "user", "shop_users", USER_FIELDS)
    dataset_id = _dataset(aitems, "user", "users_day1", "shop_users", bucket, "users/")
    final, seen = _until_done(aitems, dataset_id)
    assert final["status"] == "enable", final
    assert set(seen) <= {"waiting", "processing", "enable"}
    assert "processing" in seen
    assert final["osInfo"] == {"region": "KR", "bucket": bucket, "key": "users/"}
    assert final["connectedServices"] == []
    listed = aitems.request("GET", "/api/v1/datasets").json()["datasets"]
    assert [d["datasetId"] for d in listed] == [dataset_id]


@pytest.mark.parametrize(
    ("kind", "content", "problem"),
    [
        ("user", b"user_id,AGE\nu1,3\n", "column 1 is 'user_id', the schema has 'USER_ID'"),
        ("user", b"AGE,USER_ID\n3,u1\n", "column 1 is 'AGE', the schema has 'USER_ID'"),
        ("user", b"USER_ID,AGE\nu1,3\nu2,4\nu1,5\n", "line 4: USER_ID 'u1' repeats (first on line 2)"),
        ("user", b"USER_ID,AGE\nu1,three\n", "line 2: AGE 'three' is not of type int"),
        (
            "interaction",
            b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,2026-01-01\n",
            "line 2: TIMESTAMP '2026-01-01' is not of type long",
        ),
        ("interaction", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1\n", "line 2: 2 values, the header has 3 columns"),
        ("interaction", b"", "the file is empty"),
    ],
)
def test_a_bad_file_ends_upload_failed_naming_the_problem(
    emulator: EmulatorProcess,
    aitems: AitemsClient,
    object_storage_server: ObjectStorageServer,
    bucket: str,
    kind: str,
    content: bytes,
    problem: str,
) -> None:
    object_storage_server.client().put_object(Bucket=bucket, Key="data.csv", Body=content)
    _schema(aitems, kind, "the_schema", USER_FIELDS if kind == "user" else CLICK_FIELDS)
    final, _ = _until_done(aitems, _dataset(aitems, kind, "bad", "the_schema", bucket, "data.csv"))
    assert final["status"] == "upload_failed"
    assert final["message"].startswith(f"s3://{bucket}/data.csv")
    assert problem in final["message"]


def test_a_missing_object_or_bucket_and_a_scripted_failure(
    emulator: EmulatorProcess, aitems: AitemsClient, bucket: str
) -> None:
    _schema(aitems, "interaction", "clicks", CLICK_FIELDS)
    missing_key = _dataset(aitems, "interaction", "no_key", "clicks", bucket, "nothing-here.csv")
    missing_bucket = _dataset(aitems, "interaction", "no_bucket", "clicks", "no-such-bucket-x", "a.csv")
    scripted = _dataset(aitems, "interaction", "scripted", "clicks", bucket, "a.csv", "[emulator-fail:upload_failed]")
    assert "no such object or prefix" in _until_done(aitems, missing_key)[0]["message"]
    assert "bucket 'no-such-bucket-x' does not exist" in _until_done(aitems, missing_bucket)[0]["message"]
    assert _until_done(aitems, scripted)[0]["status"] == "upload_failed"


def test_dataset_requests_are_validated(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    _schema(aitems, "user", "shop_users", USER_FIELDS)
    good = {
        "type": "user",
        "name": "u",
        "schemaName": "shop_users",
        "osInfo": {"region": "KR", "bucket": "b", "key": "k"},
    }
    for change, details in [
        ({"type": "users"}, "type must be one of user, item, interaction"),
        ({"schemaName": "nope"}, "schemaName: no such schema"),
        ({"type": "item"}, "schema shop_users is for user datasets"),
        ({"osInfo": {"region": "US", "bucket": "b", "key": "k"}}, "osInfo.region must be KR"),
        ({"osInfo": {"region": "KR", "bucket": "b"}}, "osInfo.key must be an object key or prefix"),
    ]:
        assert _error(aitems.request("POST", "/api/v1/datasets", {**good, **change}))[2] == details
    assert _error(aitems.request("GET", "/api/v1/datasets/nope")) == (404, "300", "dataset not found")


@pytest.mark.parametrize(
    ("code", "message"), [("400", "Quota Exceeded"), ("410", "Throttle Limited"), ("420", "Rate Limited")]
)
def test_the_throttle_control_answers_429_with_each_code(
    emulator: EmulatorProcess, aitems: AitemsClient, code: str, message: str
) -> None:
    emulator.aitems_throttle(code, 2)
    for _ in range(2):
        response = aitems.request("GET", "/api/v1/datasets")
        assert response.status_code == 429
        assert response.json()["error"]["errorCode"] == code
        assert response.json()["error"]["message"] == message
    assert aitems.request("GET", "/api/v1/datasets").status_code == 200


def test_the_clock_control_skews_the_gateway_clock(emulator: EmulatorProcess, aitems: AitemsClient) -> None:
    emulator.aitems_clock(400)
    status, code, details = _error(aitems.request("GET", "/api/v1/schemas"))
    assert (status, code) == (401, "200")
    assert "timestamp" in details
    assert aitems.request("GET", "/api/v1/schemas", skew_ms=400_000).status_code == 200
    emulator.reset()  # the skew and the throttle go with a reset
    assert aitems.request("GET", "/api/v1/schemas").status_code == 200


def test_the_controls_need_test_controls(fresh_emulator: Any) -> None:
    import urllib.error
    import urllib.request

    plain = fresh_emulator(test_controls=False)
    request = urllib.request.Request(f"{plain.url}/_emulator/aitems/throttle", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
    assert refused.value.code == 404
