"""AitemsDatasetOperator against the emulator and a real S3-compatible server (moto's, on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import DAGS, run_dag
from object_storage import ObjectStorageServer

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.operators.aitems import AitemsDatasetOperator

CLICKS = b"USER_ID,ITEM_ID,TIMESTAMP,EVENT\nu1,i1,1767225600,view\nu2,i1,1767225601,buy\n"


class Record:
    """The retry record's two methods over a dict, for calling ``start`` outside a task."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None

    def get(self) -> dict[str, Any] | None:
        return self.value

    def set(self, value: dict[str, Any]) -> None:
        self.value = dict(value)


def _users_csv(tmp_path: Path, content: bytes = b"USER_ID,AGE\nu1,31\nu2,45\n") -> Path:
    path = tmp_path / "users.csv"
    path.write_bytes(content)
    return path


def _operator(**kwargs: Any) -> AitemsDatasetOperator:
    options: dict[str, Any] = {
        "task_id": "users",
        "dataset_type": "user",
        "name": "users_day1",
        "schema_name": "shop_users",
        "key": "incoming/",
        "poll_interval": 0.2,
        "timeout": 30,
        **kwargs,
    }
    return AitemsDatasetOperator(**options)


def _nothing_sent(hook: AitemsHook, server: ObjectStorageServer, bucket: str) -> None:
    assert hook.list_datasets() == []
    assert hook.list_schemas() == []
    assert server.client().list_objects(Bucket=bucket).get("Contents") is None


def test_a_file_is_uploaded_registered_and_waited_for(
    connections: EmulatorProcess,
    object_storage_server: ObjectStorageServer,
    bucket: str,
    tmp_path: Path,
    airflow_db: None,
) -> None:
    object_storage_server.client().put_object(Bucket=bucket, Key="clicks/day1.csv", Body=CLICKS)
    object_storage_server.client().put_object(Bucket=bucket, Key="clicks/day2.csv", Body=CLICKS.replace(b"u1", b"u3"))
    result = run_dag(DAGS, "aitems_dataset", bucket=bucket, users=str(_users_csv(tmp_path)))
    assert result.states == {"users_from_file": "success", "clicks_in_bucket": "success"}
    users = result.xcom("users_from_file")
    hook = AitemsHook()
    assert users == {
        "dataset_id": users["dataset_id"],
        "name": "users_day1",
        "type": "user",
        "schema_name": "shop_users",
        "bucket": bucket,
        "key": "incoming/users.csv",
    }
    assert hook.get_dataset(users["dataset_id"])["status"] == "enable"
    # The schema was made from the file's header: its columns in order, the required ones typed.
    assert hook.get_schema("shop_users")["fields"] == [
        {"name": "USER_ID", "type": "string"},
        {"name": "AGE", "type": "string"},
    ]
    uploaded = object_storage_server.client().get_object(Bucket=bucket, Key="incoming/users.csv")["Body"].read()
    assert uploaded == _users_csv(tmp_path).read_bytes()
    clicks = result.xcom("clicks_in_bucket")
    assert (clicks["key"], clicks["schema_name"], clicks["type"]) == ("clicks/", "shop_clicks", "interaction")
    assert hook.get_dataset(clicks["dataset_id"])["status"] == "enable"
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = {
            e.asset.uri: e.extra for e in session.query(AssetEvent).all() if e.source_run_id == result.dag_run.run_id
        }
    assert events[f"aitems://datasets/{users['dataset_id']}"] == {
        "event": "registered",
        "name": "users_day1",
        "type": "user",
        "schema_name": "shop_users",
        "bucket": bucket,
        "key": "incoming/users.csv",
    }
    assert f"aitems://datasets/{clicks['dataset_id']}" in events


def test_the_sensor_waits_for_enable_and_fails_on_upload_failed(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, airflow_db: None
) -> None:
    object_storage_server.client().put_object(Bucket=bucket, Key="users.csv", Body=b"USER_ID\nu1\n")
    hook = AitemsHook()
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}])
    good = hook.create_dataset("user", "good", "shop_users", bucket, "users.csv")["datasetId"]
    bad = hook.create_dataset("user", "bad", "shop_users", bucket, "users.csv", "[emulator-fail:upload_failed]")
    result = run_dag(DAGS, "aitems_dataset_sensor", good=good, bad=bad["datasetId"])
    assert result.states == {
        "good_deferrable": "success",
        "good_poke": "success",
        "bad_deferrable": "failed",
        "bad_poke": "failed",
    }
    assert result.xcom("good_deferrable")["job_status"] == "enable"


def test_a_dataset_asset_uri_names_the_dataset() -> None:
    from urllib.parse import urlsplit

    from airflow_provider_predone import assets

    uri = assets.aitems_dataset_uri("ds1")
    assert assets.sanitize_aitems_uri(urlsplit(uri)).geturl() == "aitems://datasets/ds1"
    for bad in ("aitems://datasets/", "aitems://datasets/a/b"):
        with pytest.raises(ValueError, match="an aitems:// asset URI must be"):
            assets.sanitize_aitems_uri(urlsplit(bad))


def test_a_file_the_service_refuses_fails_the_task_with_its_message(
    connections: EmulatorProcess, bucket: str, tmp_path: Path, airflow_db: None
) -> None:
    users = _users_csv(tmp_path, b"USER_ID,AGE\nu1,31\nu1,45\n")  # a repeated USER_ID: the service reads the rows
    result = run_dag(DAGS, "aitems_dataset", bucket=bucket, users=str(users))
    assert result.states["users_from_file"] == "failed"
    assert result.xcom("users_from_file") is None
    dataset = AitemsHook().find_dataset("users_day1")
    assert dataset is not None
    assert dataset["status"] == "upload_failed"
    assert "USER_ID 'u1' repeats" in dataset["message"]


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (b"user_id,AGE\nu1,3\n", None, r"data: .*users\.csv: column 'user_id' must be named exactly 'USER_ID'"),
        (b"AGE,NAME\n3,a\n", None, r"data: .*users\.csv: the user data needs the column 'USER_ID'"),
        (
            b"AGE,USER_ID\n3,u1\n",
            [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}],
            r"data: .*users\.csv: column 1 is 'AGE' but the schema has 'USER_ID' there",
        ),
        (b"\xff\xfeU\x00", None, r"data: .*users\.csv is not UTF-8 text"),
        (b"\n", None, r"has no header line"),
    ],
)
def test_a_bad_header_fails_before_anything_is_sent(
    connections: EmulatorProcess,
    object_storage_server: ObjectStorageServer,
    bucket: str,
    tmp_path: Path,
    content: bytes,
    fields: Any,
    message: str,
) -> None:
    operator = _operator(bucket=bucket, data=str(_users_csv(tmp_path, content)), fields=fields)
    with pytest.raises(InvalidInputError, match=message):
        operator.execute({})  # the checks come before the retry record is read: no task context needed
    _nothing_sent(AitemsHook(), object_storage_server, bucket)


def test_a_file_that_differs_from_the_existing_schema_fails_naming_the_column(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, tmp_path: Path
) -> None:
    hook = AitemsHook()
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}])
    operator = _operator(bucket=bucket, data=str(_users_csv(tmp_path, b"USER_ID,Age\nu1,3\n")))
    with pytest.raises(InvalidInputError, match=r"users\.csv: column 'Age' must be named exactly 'AGE'"):
        operator.execute({})
    assert hook.list_datasets() == []
    assert object_storage_server.client().list_objects(Bucket=bucket).get("Contents") is None


def test_fields_that_differ_from_the_existing_schema_are_refused(
    connections: EmulatorProcess, bucket: str, tmp_path: Path
) -> None:
    AitemsHook().create_schema(
        "user", "shop_users", [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}]
    )
    fields = [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "long"}]
    operator = _operator(bucket=bucket, data=str(_users_csv(tmp_path)), fields=fields)
    with pytest.raises(InvalidInputError, match=r"fields: schema 'shop_users' exists with the columns .*'AGE', 'int'"):
        operator.execute({})
    assert AitemsHook().list_datasets() == []


def test_files_already_in_the_bucket_are_checked_too(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str
) -> None:
    s3 = object_storage_server.client()
    s3.put_object(Bucket=bucket, Key="clicks/a.csv", Body=CLICKS)
    s3.put_object(Bucket=bucket, Key="clicks/b.csv", Body=b"USER_ID,TIMESTAMP,ITEM_ID\nu1,1,i1\n")
    operator = _operator(dataset_type="interaction", schema_name="shop_clicks", bucket=bucket, key="clicks/")
    with pytest.raises(InvalidInputError, match=rf"s3://{bucket}/clicks/b\.csv: the schema has the column 'EVENT'"):
        operator.execute({})
    with pytest.raises(InvalidInputError, match=rf"key: s3://{bucket}/nothing is neither an object nor a prefix"):
        _operator(dataset_type="interaction", schema_name="shop_clicks", bucket=bucket, key="nothing").execute({})
    assert AitemsHook().list_schemas() == []


def test_a_missing_required_column_fails_before_any_remote_call(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, tmp_path: Path
) -> None:
    before = len(object_storage_server.requests())
    operator = _operator(bucket="no-such-bucket-here", data=str(_users_csv(tmp_path, b"user_id,AGE\nu1,3\n")))
    with pytest.raises(InvalidInputError, match=r"column 'user_id' must be named exactly 'USER_ID'"):
        operator.execute({})  # the column, not the bucket: the bucket is not even asked for
    assert len(object_storage_server.requests()) == before
    assert connections.state()["requests"] == 0


def test_a_missing_bucket_is_named_before_anything_is_sent(connections: EmulatorProcess, tmp_path: Path) -> None:
    operator = _operator(bucket="no-such-bucket-here", data=str(_users_csv(tmp_path)))
    with pytest.raises(InvalidInputError, match="no-such-bucket-here"):
        operator.execute({})
    assert AitemsHook().list_schemas() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_name": "9users"}, "schema_name must start with a letter"),
        ({"schema_name": "a-very-long-schema-name"}, "schema_name must be 3 to 20 characters long, got 23"),
        ({"bucket": "Bad_Bucket"}, "bucket must be a bucket name"),
        ({"key": "/abs.csv"}, "key must be an object key"),
        ({"fields": [{"name": "USER_ID", "type": "text"}]}, r"fields\[0\].type must be one of"),
        ({"data": "/no/such/users.csv"}, "data: /no/such/users.csv does not exist"),
    ],
)
def test_bad_arguments_fail_naming_the_field(
    connections: EmulatorProcess, change: dict[str, Any], message: str
) -> None:
    operator = _operator(**{"bucket": "some-bucket", "data": "/no/such/users.csv", **change})
    with pytest.raises(InvalidInputError, match=message):
        operator.execute({})


def test_an_unknown_dataset_type_fails_at_parse() -> None:
    with pytest.raises(InvalidInputError, match=r"dataset_type must be one of \['user', 'item', 'interaction'\]"):
        _operator(dataset_type="users", bucket="b", data="x.csv")


def test_a_retry_finds_the_dataset_an_earlier_try_registered(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, tmp_path: Path
) -> None:
    """An earlier try recorded the name, then lost the answer: the retry re-attaches, nothing is sent twice."""
    operator = _operator(bucket=bucket, data=str(_users_csv(tmp_path)))
    prepared = operator.prepare(tmp_path)
    first = Record()
    job = operator.start(first, prepared, None)

    def uploads_here() -> list[tuple[str, str, int]]:  # the session's server: other tests' buckets too
        return [r for r in object_storage_server.requests() if r[0] == "PUT" and r[1].startswith(f"/{bucket}/")]

    uploads = uploads_here()
    assert len(uploads) == 1
    retry = Record()
    again = operator.start(retry, prepared, {**job, "dataset_id": None})
    assert again == job
    assert retry.value == job
    assert [d["datasetId"] for d in AitemsHook().list_datasets()] == [job["dataset_id"]]
    assert uploads_here() == uploads
    # Without a record of its own, a task does not take over a dataset of the same name.
    with pytest.raises(InvalidInputError, match="name: the dataset 'users_day1' exists already"):
        operator.start(Record(), prepared, None)


def test_the_file_may_be_any_object_storage_path(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str
) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    source = ObjectStoragePath("memory://exports/today/users.csv")
    source.write_bytes(b"USER_ID,AGE\nu1,31\n")
    operator = _operator(bucket=bucket, data=source, key="in/")
    job = operator.start(Record(), operator.prepare(Path()), None)
    assert job["key"] == "in/users.csv"
    stored = object_storage_server.client().get_object(Bucket=bucket, Key="in/users.csv")["Body"].read()
    assert stored == b"USER_ID,AGE\nu1,31\n"


def test_lineage_names_the_object_storage_file_and_the_dataset() -> None:
    operator = _operator(bucket="shop-data", data="/tmp/users.csv")
    result = {"dataset_id": "ds1", "name": "users_day1", "type": "user", "schema_name": "shop_users"}
    operator.finished({**result, "bucket": "shop-data", "key": "incoming/users.csv"})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("file", "/tmp/users.csv"),
        ("s3://shop-data", "incoming/users.csv"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("aitems://datasets", "ds1")]
    assert lineage.run_facets["predone_job"].details == {**result, "dataset_id": "ds1"}
