"""
Score new customers whenever a model's prediction API is switched to a retrained version.

Scheduled on the asset ``predone://prediction_one/models/<model_id>/serving``, which
:class:`~airflow_provider_predone.operators.predone.PredictionOneSwitchModelOperator` updates
after a successful switch (here model 1, the model ``make demo`` trains). Run by hand, it
scores with the model given in the ``model_id`` param.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_predone.assets import serving_uri
from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

DATA = Path(__file__).parent / "data"

# [START howto_asset_predone_serving]
with DAG(
    dag_id="predone_score_on_switch",
    schedule=[Asset(serving_uri("prediction_one", 1))],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "model_id": Param(1, type="integer"),
        "output_dir": Param(str(Path(tempfile.gettempdir()) / "predone-scores"), type="string"),
    },
    tags=["prediction-one", "example"],
) as dag:

    @task
    def running_prediction_api(params: Any = None, triggering_asset_events: Any = None) -> str:
        """The prediction API of the switched model (from the asset event, else the param)."""
        from airflow_provider_predone.hooks.predone import PredictionOneHook

        events = [event for group in (triggering_asset_events or {}).values() for event in group]
        model_id = events[-1].extra["model_id"] if events else params["model_id"]
        apis = [p for p in PredictionOneHook().list_prediction_apis() if p.model_id == model_id]
        running = [p.classifier_id for p in apis if p.status == "running"]
        if not running:
            raise ValueError(f"model {model_id} has no running prediction API")
        return running[0]

    PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=running_prediction_api(),
        input_data=str(DATA / "score.csv"),
        output_data="{{ params.output_dir }}/scores_{{ run_id | replace(':', '_') }}.csv",
    )
# [END howto_asset_predone_serving]
