"""
The ``aitems_recommendations`` example DAG runs nightly from raw files to recommendations files,
with ``dag.test()`` against the emulator and a real S3-compatible server (moto's, on 127.0.0.1):
the files land in the bucket, the emulator reads them from there to register the datasets, the
service is created on the first night and reused on the next (which deletes the first night's
datasets), and the output files hold every target in input order.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers import DATA, EXAMPLES, DagRunResult, load_dag
from object_storage import ObjectStorageServer

from airflow_provider_predone.emulator import EmulatorProcess

DAG_ID = "aitems_recommendations"
NIGHTS = (datetime(2026, 12, 6, 2, tzinfo=UTC), datetime(2026, 12, 7, 2, tzinfo=UTC))


def run_night(night: datetime, **conf: object) -> DagRunResult:
    """One scheduled night: ``run_after`` (and so the datasets' names and keys) is that night."""
    from airflow import settings

    if settings.Session is None:  # as helpers.run_dag: an api-server app may have disposed the ORM
        settings.configure_orm()
    dag: Any = load_dag(EXAMPLES, DAG_ID)
    return DagRunResult(dag.test(logical_date=night, run_conf=conf))


def column(path: Path, name: str) -> list[str]:
    with path.open(newline="") as stream:
        return [row[name] for row in csv.DictReader(stream)]


def test_two_nights_from_raw_files_to_recommendations(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, airflow_db, tmp_path: Path
) -> None:
    from airflow_provider_predone.hooks.aitems import AitemsHook

    users, items = (
        column(DATA / "aitems_target_users.csv", "USER_ID"),
        column(DATA / "aitems_target_items.csv", "ITEM_ID"),
    )
    service_ids = []
    for night in NIGHTS:
        result = run_night(night, bucket=bucket, output_dir=str(tmp_path))
        assert set(result.states.values()) == {"success"}, result.states
        day = night.strftime("%Y%m%d")

        # Raw files → the bucket, under the night's prefix, each under its own name.
        keys = sorted(o["Key"] for o in object_storage_server.client().list_objects(Bucket=bucket)["Contents"])
        assert {f"shop/{day}/aitems_{kind}.csv" for kind in ("users", "items", "interactions")} <= set(keys)

        # → three datasets, enabled (the emulator read and checked the files in the bucket).
        registered = {kind: result.xcom(f"register_{kind}s") for kind in ("user", "item", "interaction")}
        for kind, dataset in registered.items():
            assert dataset["type"] == kind
            assert dataset["name"] == f"shop_{kind}s_{day}"
            assert (dataset["bucket"], dataset["key"]) == (bucket, f"shop/{day}/{dataset['key'].rsplit('/', 1)[-1]}")
            assert AitemsHook().get_dataset(dataset["dataset_id"])["status"] == "enable"

        # → the service, linked to tonight's datasets; → both trainings completed.
        service = result.xcom("service")
        service_ids.append(service["service_id"])
        trained = result.xcom("train")
        assert trained["service_id"] == service["service_id"]
        assert trained["statuses"] == {"personalRecommend": "completed", "relatedItem": "completed"}

        # → the recommendations files: every target, in the targets file's order.
        out = tmp_path / day
        for_users = result.xcom("recommend_for_users")
        assert (for_users["targets"], for_users["train_type"]) == (len(users), "personalRecommend")
        assert for_users["version"] == trained["versions"]["personalRecommend"]
        rows = list(csv.DictReader((out / "for_users.csv").open(newline="")))
        assert rows
        assert list(rows[0]) == ["target_id", "rank", "item_id"]
        assert len(rows) == for_users["rows"]
        assert list(dict.fromkeys(r["target_id"] for r in rows)) == [
            u for u in users if any(r["target_id"] == u for r in rows)
        ]
        assert for_users["targets"] - for_users["empty"] == len({r["target_id"] for r in rows})
        lines = [json.loads(line) for line in (out / "related_items.jsonl").read_text().splitlines()]
        assert [line["target"] for line in lines] == items
        assert any(line["values"] for line in lines)
        assert not list(out.glob("*.part"))

        # The night before's datasets are gone (the first night has none to delete).
        forgotten = result.xcom("forget_the_night_before")
        if night == NIGHTS[0]:
            assert forgotten == []
        else:
            first = NIGHTS[0].strftime("%Y%m%d")
            assert sorted(forgotten) == sorted(f"shop_{kind}s_{first}" for kind in ("user", "item", "interaction"))
            assert all(AitemsHook().find_dataset(name) is None for name in forgotten)
        assert all(AitemsHook().find_dataset(d["name"]) is not None for d in registered.values())

    # The second night reused the service the first created: created exactly once.
    assert service_ids[0] == service_ids[1]
    services = [s for s in AitemsHook().list_services() if s.get("name") == "shop_reco_nightly"]
    assert [s["serviceId"] for s in services] == service_ids[:1]
    assert connections.state()["aitems_trainings_started"] == 4


def test_a_missing_bucket_fails_the_night_before_anything_reaches_aitems(
    connections: EmulatorProcess, airflow_db, tmp_path: Path
) -> None:
    result = run_night(NIGHTS[0], bucket="no-such-bucket-here", output_dir=str(tmp_path))
    assert {t: result.states[t] for t in ("register_users", "register_items", "register_interactions")} == {
        "register_users": "failed",  # InvalidInputError: not retried
        "register_items": "failed",
        "register_interactions": "failed",
    }
    assert result.states["service"] == "upstream_failed"
    assert connections.state()["requests"] == 0  # no AiTEMS call at all
    assert not list(tmp_path.iterdir())


def test_a_file_with_wrong_columns_is_neither_uploaded_nor_registered(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, airflow_db, tmp_path: Path
) -> None:
    from airflow_provider_predone.hooks.aitems import AitemsHook

    data = tmp_path / "exports"
    data.mkdir()
    for source in DATA.glob("aitems_*.csv"):
        (data / source.name).write_bytes(source.read_bytes())
    users = data / "aitems_users.csv"
    users.write_text(users.read_text().replace("USER_ID,AGE,GENDER", "user_id,AGE,GENDER", 1))  # case matters
    result = run_night(NIGHTS[0], bucket=bucket, data_dir=str(data), output_dir=str(tmp_path / "out"))
    assert (result.states["register_users"], result.states["service"]) == ("failed", "upstream_failed")
    assert result.states["register_items"] == "success"  # the other files are fine
    listed = object_storage_server.client().list_objects(Bucket=bucket).get("Contents", [])
    assert "shop/20261206/aitems_users.csv" not in {o["Key"] for o in listed}
    assert AitemsHook().find_dataset("shop_users_20261206") is None
    assert AitemsHook().find_schema("shop_users") is None
