"""
A nightly AiTEMS pipeline, from the day's raw files to a recommendations file for the app:

raw files → NCP Object Storage → user, item and interaction datasets → the service (created
once, reused every night after) → training (personalised and related items) → the
recommendations of the day's targets, as CSV and JSON Lines; then the night before's datasets,
which the service no longer reads, are deleted.

Every wait is deferrable. Run it against the local emulator and an S3-compatible server with
``make demo``; give ``bucket`` an existing bucket of yours (the connection's keys must be
allowed to write to it) and ``data_dir`` a folder (local or ``s3://...``) with the day's files.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_provider_predone.operators.aitems import (
    AitemsDatasetOperator,
    AitemsRecommendationsOperator,
    AitemsServiceOperator,
    AitemsTrainOperator,
)

DATA = Path(__file__).parent / "data"
#: The day's export of the shop, one file per dataset type.
FILES = {"user": "aitems_users.csv", "item": "aitems_items.csv", "interaction": "aitems_interactions.csv"}
#: The night a run is for: its logical date, or when it runs if it has none (a manual run by default).
NIGHT = "{{ (dag_run.logical_date or dag_run.run_after) | ds_nodash }}"

with DAG(
    dag_id="aitems_recommendations",
    schedule="0 2 * * *",  # every night at 02:00, once the day's exports are written
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "bucket": Param(
            "aitems-demo", type="string", description="the Object Storage bucket the datasets are read from"
        ),
        "data_dir": Param(str(DATA), type="string", description="where the day's user, item and interaction files are"),
        "output_dir": Param(str(Path(tempfile.gettempdir()) / "aitems-recommendations"), type="string"),
        "service_name": Param("shop_reco_nightly", type="string"),
    },
    # Short polls suit the emulator's quick jobs; against the real service, a minute or more.
    default_args={"retries": 2, "retry_delay": 5, "deferrable": True, "poll_interval": 2},
    tags=["aitems", "example"],
) as dag:
    # [START howto_operator_aitems_dataset]
    datasets = {
        kind: AitemsDatasetOperator(
            task_id=f"register_{kind}s",
            dataset_type=kind,
            name=f"shop_{kind}s_{NIGHT}",  # AiTEMS reads a dataset's files once: one dataset a night
            schema_name=f"shop_{kind}s",  # created from the file's header on the first night
            data="{{ params.data_dir }}/" + FILES[kind],
            bucket="{{ params.bucket }}",
            key=f"shop/{NIGHT}/",  # uploaded there under the file's own name
        )
        for kind in ("user", "item", "interaction")
    }
    # [END howto_operator_aitems_dataset]

    # [START howto_operator_aitems_service]
    service = AitemsServiceOperator(
        task_id="service",
        name="{{ params.service_name }}",  # created on the first night, reused after
        user_dataset_id=datasets["user"].output,
        item_dataset_id=datasets["item"].output,
        interaction_dataset_id=datasets["interaction"].output,
    )
    # [END howto_operator_aitems_service]

    train = AitemsTrainOperator(
        task_id="train",
        service_id=service.output["service_id"],
        train_types=["personalRecommend", "relatedItem"],
        hp_config={"is_enabled": False},
        description=f"nightly {NIGHT}",
    )

    # [START howto_operator_aitems_recommendations]
    for_users = AitemsRecommendationsOperator(
        task_id="recommend_for_users",
        service_id=service.output["service_id"],
        train_type="personalRecommend",
        targets="{{ params.data_dir }}/aitems_target_users.csv",
        target_column="USER_ID",
        output_data="{{ params.output_dir }}/" + NIGHT + "/for_users.csv",  # target_id,rank,item_id
        max_in_flight=8,
    )
    # [END howto_operator_aitems_recommendations]

    related = AitemsRecommendationsOperator(
        task_id="related_items",
        service_id=service.output["service_id"],
        train_type="relatedItem",
        targets="{{ params.data_dir }}/aitems_target_items.csv",
        target_column="ITEM_ID",
        output_data="{{ params.output_dir }}/" + NIGHT + "/related_items.jsonl",  # {"target", "values"} a line
    )

    @task
    def forget_the_night_before(night: str) -> list[str]:
        """
        Delete the night before's datasets: the service was linked to tonight's and trained on them.
        Their files stay in the bucket (a lifecycle rule of the bucket can expire them).
        """
        from airflow_provider_predone.hooks.aitems import AitemsHook

        hook = AitemsHook()
        before = (datetime.strptime(night, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
        deleted = []
        for kind in FILES:
            dataset = hook.find_dataset(f"shop_{kind}s_{before}")
            if dataset is not None and hook.delete_dataset(str(dataset["datasetId"]), missing_ok=True):
                deleted.append(str(dataset["name"]))
        return deleted

    train >> [for_users, related, forget_the_night_before(NIGHT)]
