"""Time-series mode (``tsm``): the emulator refuses a forecasting design that cannot work.

Over HTTP against the emulator, with the forecasting example's data (3 stores x 36 months):
the time and series columns exist and parse in the time unit, the forecast window fits the
data's grid and history, and the rows to score carry what the forecast reads.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from emulator_support import TIMEOUT, PredoneClient, infer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "example_dags" / "data"
HISTORY = DATA / "sales_history.csv"
FORECAST = {
    "tc": "sales",
    "tt": "regression",
    "tsm": "true",
    "tsc": "month",
    "tsu": "month",
    "tss": "store",
    "tsf": "1",
    "tst": "3",
    "tsin": "true",
    "tsine": ["visitors"],
}


def rewritten(path: Path, source: Path, change: Any) -> Path:
    """``source`` with ``change(row)`` applied to every data row (a dict; return ``None`` to drop it)."""
    with source.open(newline="") as file:
        rows = list(csv.DictReader(file))
    changed = [row for row in (change(dict(row)) for row in rows) if row is not None]
    with path.open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(changed[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(changed)
    return path


def failed(predone: PredoneClient, learn: Path, config: dict[str, Any]) -> str:
    """Train and answer the failure message (the test fails if the training finishes)."""
    result = predone.train(predone.key(), learn, config, name="sales")
    assert result["status"] == "failed", result
    return str(result["message"])


def bad_request(response: requests.Response) -> str:
    """The message of a schema refusal of an inference request, as the vendor codes it."""
    assert response.status_code == 400, response.text
    answer = response.json()
    assert (answer["code"], answer["error"]) == (4001030104, "BAD_REQUEST"), answer
    return str(answer["message"])


def summary(predone: PredoneClient, key: str, result: dict[str, Any]) -> dict[str, Any]:
    archive = requests.get(result["result_url"], timeout=TIMEOUT).content
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        loaded: dict[str, Any] = json.loads(opened.read("model_summary.json"))
    return loaded


def test_a_forecast_trains_on_the_history_and_scores_the_window(predone: PredoneClient) -> None:
    key = predone.key()
    result = predone.train(key, HISTORY, FORECAST, name="sales")
    assert result["status"] == "finished", result
    found = summary(predone, key, result)
    assert found["algorithm"] == "time_series_ridge_regression"
    assert found["evaluation"] == {"method": "backtest", "rows": 9}  # the last 3 months x 3 stores
    assert found["metrics"]["r2"] > 0.8
    assert found["time_series"] == {
        "time_column": "month",
        "series_column": "store",
        "unit": "month",
        "interval": 1,
        "window": [1, 3],
        "history": {"first": "2023-01", "last": "2025-12"},
        "series": ["sakae", "shibuya", "umeda"],
        "known_columns": ["promo", "holidays"],  # visitors is in tsine: not known ahead
    }
    classifier = predone.deploy(key, predone.newest_model_id(key))
    rows = list(csv.reader((DATA / "sales_2026q1_to_score.csv").read_text().splitlines()))
    answer = infer(classifier, (DATA / "sales_2026q1_to_score.csv").read_text(), pc="store")
    answer.raise_for_status()
    # Future rows only: month, store and the known columns; no sales, no visitors.
    assert rows[0] == ["month", "store", "promo", "holidays"]
    # A blank target column is accepted too (extra columns are).
    blank = "month,store,promo,holidays,sales\n2026-01,umeda,1,3,\n"
    assert infer(classifier, blank).status_code == 200
    # Beyond the window (2026-04 is 4 months after 2025-12, tst=3): refused.
    later = bad_request(infer(classifier, (DATA / "sales_2026q2_to_score.csv").read_text()))
    assert later == (
        "row 1: 2026-04 is outside the forecast window 2026-01 to 2026-03 "
        "(tsf=1, tst=3 after the training data's last time 2025-12)"
    )


@pytest.mark.parametrize(
    ("change", "config", "message"),
    [
        pytest.param(
            None,
            {"tsc": "date"},
            "the time column 'date' (tsc) is not in the data",
            id="missing-time-column",
        ),
        pytest.param(
            None,
            {"tss": "shop"},
            "the series column 'shop' (tss) is not in the data",
            id="missing-series-column",
        ),
        pytest.param(
            lambda row: {**row, "month": "soon" if row["month"] == "2024-05" else row["month"]},
            {},
            "the time column 'month' (tsc) holds 'soon' in data row 49, which is not a month (tsu=month): "
            "write YYYY-MM or a date",
            id="unparsable-date",
        ),
        pytest.param(
            lambda row: {**row, "month": "2024-13" if row["month"] == "2024-12" else row["month"]},
            {},
            "the time column 'month' (tsc) holds '2024-13' in data row 70",
            id="month-13",
        ),
        pytest.param(
            None,
            {"tsu": "day"},
            "the time column 'month' (tsc) holds '2023-01' in data row 1, which is not a day (tsu=day): "
            "write a date, YYYY-MM-DD; the data look like tsu=month",
            id="monthly-data-said-daily",
        ),
        pytest.param(
            lambda row: {**row, "month": row["month"] + "-01"},
            {"tsu": "day"},
            "the time column 'month' (tsc) does not step regularly in days (tsu=day): consecutive times are "
            "28 to 31 days apart, not multiples of 28; the data look like tsu=month",
            id="monthly-dates-said-daily",
        ),
        pytest.param(
            None,
            {"tsu": "year"},
            "series 'shibuya' of 'store' (tss) has 12 rows for 2023 (tsu=year)",
            id="monthly-data-said-yearly",
        ),
        pytest.param(
            lambda row: {**row, "month": row["month"] + "-01"},
            {"tsu": "eom"},
            "the time column 'month' (tsc) holds '2023-01-01' in data row 1, which is not a month end",
            id="not-month-ends",
        ),
        pytest.param(
            None,
            {"tss": None},
            "the time 2023-01 occurs in 3 rows of 'month' (tsc, tsu=month): one row per time is needed; "
            "if the rows belong to several series (stores, products), name that column in tss",
            id="series-column-forgotten",
        ),
        pytest.param(
            None,
            {"tsf": "12", "tst": "36"},
            "the forecast window ends 36 months after the data (tst=36) but the history spans 36 months "
            "(2023-01 to 2025-12): the window must be shorter than the history",
            id="window-longer-than-history",
        ),
        pytest.param(
            None,
            {"tst": "33"},
            "the data before the last 33 months (tst=33) have 9 usable rows; at least 10 are needed",
            id="window-leaves-too-little-to-check",
        ),
        pytest.param(
            None,
            {"tsi": "2"},
            "the time column 'month' (tsc) does not step regularly in months (tsu=month, tsi=2)",
            id="interval-not-the-datas",
        ),
        pytest.param(
            lambda row: {**row, "store": "" if row["month"] == "2025-06" else row["store"]},
            {},
            "the series column 'store' (tss) is empty in data row",
            id="blank-series",
        ),
        pytest.param(
            None,
            {"tsine": ["footfall"]},
            "tsine names 'footfall', which is not in the data",
            id="unknown-tsine-column",
        ),
    ],
)
def test_a_wrong_design_fails_the_training(
    predone: PredoneClient, tmp_path: Path, change: Any, config: dict[str, Any], message: str
) -> None:
    learn = rewritten(tmp_path / "sales.csv", HISTORY, change) if change else HISTORY
    settings = {k: v for k, v in {**FORECAST, **config}.items() if v is not None}
    assert failed(predone, learn, settings).startswith(message)


def test_without_tsu_the_unit_comes_from_the_data(predone: PredoneClient, tmp_path: Path) -> None:
    auto = {k: v for k, v in FORECAST.items() if k != "tsu"}
    key = predone.key()
    result = predone.train(key, HISTORY, auto, name="sales")
    assert summary(predone, key, result)["time_series"]["unit"] == "month"
    month_ends = rewritten(tmp_path / "eom.csv", HISTORY, lambda row: {**row, "month": _month_end(row["month"])})
    result = predone.train(key, month_ends, auto, name="sales")
    assert summary(predone, key, result)["time_series"]["unit"] == "eom"


def _month_end(month: str) -> str:
    import calendar

    year, number = (int(part) for part in month.split("-"))
    return f"{month}-{calendar.monthrange(year, number)[1]:02d}"


def test_overlapping_roles_are_an_invalid_config(predone: PredoneClient) -> None:
    key = predone.key()
    process_id = predone.upload_training_data(key, HISTORY)
    for config, message in (
        ({"tsc": "sales"}, "Invalid config: tsc (the time column) must not be the target column tc"),
        ({"tss": "month"}, "Invalid config: tss (the series column) must differ from tc and tsc"),
        ({"tsine": ["store"]}, "Invalid config: tsine lists other columns, not tc, tsc or tss"),
    ):
        body = {"external_process_id": process_id, "name": "sales", "config": {**FORECAST, **config}}
        response = predone.call("POST", "/models", key, json=body)
        assert response.status_code == 400
        assert response.json()["message"] == message


@pytest.fixture
def forecaster(predone: PredoneClient) -> dict[str, Any]:
    """A running prediction API of the sales forecast."""
    key = predone.key()
    assert predone.train(key, HISTORY, FORECAST, name="sales")["status"] == "finished"
    return predone.deploy(key, predone.newest_model_id(key))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("store,promo,holidays\numeda,1,3\n", "missing columns the forecast needs: month (tsc, the time column)"),
        ("month,promo,holidays\n2026-01,1,3\n", "missing columns the forecast needs: store (tss, the series column)"),
        (
            "month,store\n2026-01,umeda\n",
            "missing columns the forecast needs: promo (known in the forecast window: tsin/tsine), "
            "holidays (known in the forecast window: tsin/tsine)",
        ),
        ("month,store,promo,holidays\nJanuary,umeda,1,3\n", "row 1: the time column 'month' holds 'January'"),
        ("month,store,promo,holidays\n,umeda,1,3\n", "row 1: the time column 'month' holds ''"),
        ("month,store,promo,holidays\n2026-01,namba,1,3\n", "row 1: series 'namba' of 'store' has no history"),
    ],
    ids=["no-time-column", "no-series-column", "no-known-columns", "bad-time", "blank-time", "unknown-series"],
)
def test_rows_to_score_must_carry_what_the_forecast_reads(forecaster: dict[str, Any], rows: str, message: str) -> None:
    assert bad_request(infer(forecaster, rows)).startswith(message)


def test_visitors_not_known_ahead_is_not_needed_to_score(forecaster: dict[str, Any]) -> None:
    answer = infer(forecaster, "month,store,promo,holidays\n2026-02,shibuya,0,1\n", nr=True)
    assert answer.status_code == 200, answer.text


def test_a_retraining_checks_its_data_as_a_training_does(predone: PredoneClient, tmp_path: Path) -> None:
    key = predone.key()
    assert predone.train(key, HISTORY, FORECAST, name="sales")["status"] == "finished"
    model_id = predone.newest_model_id(key)
    no_store = rewritten(tmp_path / "no_store.csv", DATA / "sales_history_2026q1.csv", lambda r: r | {"store": ""})
    _, _, status = predone.retrain(model_id, no_store, "sales.csv")
    assert status["status"] == "job_failed"
    assert status["message"].startswith("the series column 'store' (tss) is empty in data row 1")
    _, _, status = predone.retrain(model_id, DATA / "sales_history_2026q1.csv", "sales.csv")
    assert status["status"] == "job_finished", status


# The provider checks what it can before anything is uploaded, naming the field.


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tsc": "sales"}, "'tsc' (the time column) must not be the target column 'tc', got 'sales' for both"),
        ({"tss": "month"}, "'tss' (the series column) must differ from 'tc' and 'tsc', got 'month'"),
        ({"tsine": ["visitors", "store"]}, "'tsine' lists other columns, not the target, time or series column"),
    ],
)
def test_the_provider_refuses_overlapping_roles(config: dict[str, Any], message: str) -> None:
    from airflow_provider_predone.exceptions import InvalidInputError
    from airflow_provider_predone.protocol import predone as api

    with pytest.raises(InvalidInputError, match=re.escape(message)):
        api.validate_config({**FORECAST, **config})
    assert api.validate_config(FORECAST)["tsine"] == ["visitors"]


def test_the_train_operator_wants_the_time_and_series_columns_in_the_evaluation_data(
    connections: Any, tmp_path: Path
) -> None:
    from airflow_provider_predone.exceptions import InvalidInputError
    from airflow_provider_predone.operators.predone import PredictionOneTrainOperator

    drop_month = lambda row: {name: cell for name, cell in row.items() if name != "month"}  # noqa: E731
    no_month = rewritten(tmp_path / "eval.csv", DATA / "sales_2026q1_actuals.csv", drop_month)
    operator = PredictionOneTrainOperator(
        task_id="train", train_data=str(HISTORY), eval_data=str(no_month), model_name="sales", config=FORECAST
    )
    with pytest.raises(InvalidInputError, match=re.escape("has no column for tsc='month'")):
        operator.execute({})
    assert connections.state()["uploads"] == 0


def test_hourly_series_numbered_as_integers(predone: PredoneClient, tmp_path: Path) -> None:
    """Hours, without tsu: the unit comes from the steps; series written 1 and 2 stay labels."""
    learn = tmp_path / "load.csv"
    lines = ["time,sensor,load"]
    for hour in range(48):
        for sensor in (1, 2):
            lines.append(f"2026-03-{1 + hour // 24:02d} {hour % 24:02d}:00,{sensor},{100 * sensor + hour % 24}")
    learn.write_text("\n".join(lines) + "\n")
    config = {"tc": "load", "tt": "regression", "tsm": True, "tsc": "time", "tss": "sensor", "tsf": 1, "tst": 6}
    key = predone.key()
    result = predone.train(key, learn, config, name="load")
    assert result["status"] == "finished", result
    found = summary(predone, key, result)["time_series"]
    assert (found["unit"], found["interval"], found["series"]) == ("hour", 1, ["1", "2"])
    assert found["history"] == {"first": "2026-03-01 00:00", "last": "2026-03-02 23:00"}
    classifier = predone.deploy(key, predone.newest_model_id(key))
    assert infer(classifier, "time,sensor\n2026-03-03 05:00,2\n").status_code == 200
    late = bad_request(infer(classifier, "time,sensor\n2026-03-03 06:00,2\n"))
    assert late.startswith(
        "row 1: 2026-03-03 06:00 is outside the forecast window 2026-03-03 00:00 to 2026-03-03 05:00"
    )
