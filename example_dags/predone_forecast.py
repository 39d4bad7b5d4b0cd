"""
A monthly sales forecast on Prediction One, in time-series mode (3 stores x 36 months):

train → deploy a prediction API → forecast the next quarter → retrain with that quarter's
actual sales → quality gate → switch → forecast the quarter after.

The rows to forecast are future store-months only: the time column (``month``), the series
column (``store``) and the columns known before the month happens (``promo``, ``holidays``);
no ``sales`` and no ``visitors`` (counted as the month happens, so listed in ``tsine``). See
docs/guides/forecasting.md for what each time-series key means and what the vendor leaves
unsaid. Run it against the local emulator with ``make demo``.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
    metric_gate,
)

DATA = Path(__file__).parent / "data"

# [START howto_forecast_config]
FORECAST = {
    "tc": "sales",  # the target: what is forecast
    "tt": "regression",  # time-series mode needs regression
    "tsm": "true",  # time-series mode
    "tsc": "month",  # the time column
    "tsu": "month",  # its unit: one row per store and month
    "tss": "store",  # the series column: one series per store
    "tsf": "1",  # the forecast window: from 1 month after the data's end ...
    "tst": "3",  # ... to 3 months after it
    "tsin": "true",  # the other columns are known for the months forecast ...
    "tsine": ["visitors"],  # ... except visitors, only counted as the month happens
}
# [END howto_forecast_config]

with DAG(
    dag_id="predone_forecast",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"output_dir": Param(str(Path(tempfile.gettempdir()) / "predone-forecast"), type="string")},
    default_args={"retries": 2, "retry_delay": 5, "deferrable": True, "poll_interval": 2},
    tags=["prediction-one", "example", "time-series"],
) as dag:
    # [START howto_forecast_train]
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data=str(DATA / "sales_history.csv"),  # 2023-01 to 2025-12, every store every month
        model_name="monthly_sales",
        config=FORECAST,
        result_dir="{{ params.output_dir }}/train",
    )
    # [END howto_forecast_train]

    deploy = PredictionOneCreatePredictionApiOperator(
        task_id="deploy",
        model_id=train.output["model_id"],
        ip_rules=[{"source": "0.0.0.0/0", "order": "allow", "priority": 1}],
    )

    # [START howto_forecast_score]
    forecast_q1 = PredictionOneBatchPredictOperator(
        task_id="forecast_2026q1",
        classifier_id=deploy.output["classifier_id"],
        # month, store, promo, holidays for 2026-01 to 2026-03: future rows only, no sales column
        input_data=str(DATA / "sales_2026q1_to_score.csv"),
        output_data="{{ params.output_dir }}/forecast_2026q1.csv",
        echo_input=True,  # each forecast beside its month and store
    )
    # [END howto_forecast_score]

    # [START howto_forecast_retrain]
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=train.output["model_id"],
        train_data=str(DATA / "sales_history_2026q1.csv"),  # the history up to 2026-03
        # The quarter's actual sales: the served model forecast them without knowing them.
        eval_data=str(DATA / "sales_2026q1_actuals.csv"),
        result_dir="{{ params.output_dir }}/retrain",
    )
    switch = PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        # Switch only if the retrained model's error on the quarter is no larger (rmse: lower is better).
        quality_gate=metric_gate("rmse"),
    )
    # [END howto_forecast_retrain]

    # The window now starts after 2026-03, the retrained model's last month.
    forecast_q2 = PredictionOneBatchPredictOperator(
        task_id="forecast_2026q2",
        classifier_id=deploy.output["classifier_id"],
        input_data=str(DATA / "sales_2026q2_to_score.csv"),
        output_data="{{ params.output_dir }}/forecast_2026q2.csv",
        echo_input=True,
    )

    # One XCom, the whole record (the demo reads it), not one more per key.
    @task(multiple_outputs=False, trigger_rule="all_done")
    def summary(ti: Any = None) -> dict[str, Any]:
        """What happened, in one small record (the demo prints it) — also when the gate refused."""
        trained = ti.xcom_pull(task_ids="train") or {}
        retrained = ti.xcom_pull(task_ids="retrain") or {}
        switched = ti.xcom_pull(task_ids="switch") or {}
        scored = [ti.xcom_pull(task_ids=t) or {} for t in ("forecast_2026q1", "forecast_2026q2")]
        forecasts: dict[str, dict[str, float]] = {}
        for result in scored:
            if result.get("output_data"):
                with open(result["output_data"], newline="", encoding="utf-8") as file:
                    for row in csv.DictReader(file):
                        forecasts.setdefault(row["month"], {})[row["store"]] = float(row["prediction"])
        return {
            "model_id": trained.get("model_id"),
            "metrics_trained": trained.get("metrics"),
            "metrics_before": retrained.get("previous_metrics"),
            "metrics_after": retrained.get("metrics"),
            "rows_forecast_each": [s.get("rows_scored", 0) for s in scored],
            "model_versions": [s.get("model_version") for s in scored],
            "switched": bool(switched.get("switched")),
            "quality_gate": switched.get("quality_gate"),
            "forecasts": forecasts,  # {month: {store: sales}}
        }

    forecast_q1 >> retrain
    switch >> forecast_q2
    [switch, forecast_q2] >> summary()
