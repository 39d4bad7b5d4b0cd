"""The emulator's data reading, models and metrics, checked on small known cases."""

from __future__ import annotations

import io
import math
import random

import pytest

from airflow_provider_predone.emulator.learning import (
    BINARY,
    NaiveBayes,
    Prediction,
    Ridge,
    classification_metrics,
    importance,
    regression_metrics,
)
from airflow_provider_predone.emulator.tabular import (
    DATE,
    FLOAT,
    MAX_ROWS,
    STRING,
    DataError,
    Table,
    infer_kind,
    parse_date,
    read_csv,
)
from airflow_provider_predone.emulator.training import ConfigError, parse_config


@pytest.mark.parametrize(
    ("cells", "kind"),
    [
        (["1", "2.5", "", "-3e2"], FLOAT),
        (["2024-01-31", "2024/2/1", "2024-03-01 12:30", "2024-03-01T12:30:15"], DATE),
        (["2024-02-30"], STRING),  # not a real day
        (["1", "2024-01-01"], STRING),
        (["nan", "1"], STRING),
        (["", ""], STRING),
    ],
)
def test_type_inference(cells: list[str], kind: int) -> None:
    assert infer_kind(cells) == kind


def test_dates_are_day_ordinals() -> None:
    assert parse_date("2024-01-02 12:00") == parse_date("2024-01-01") + 1.5  # type: ignore[operator]


def test_read_csv_caps_rows_and_pads_short_ones() -> None:
    text = "a,b\n" + "1\n" + "2,3,4\n" * (MAX_ROWS + 5)
    table = read_csv(io.BytesIO(("\ufeff" + text).encode()))
    assert table.columns == ["a", "b"]
    assert len(table.rows) == MAX_ROWS
    assert table.rows[:2] == [["1", ""], ["2", "3"]]
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(io.BytesIO("a,b\n\x82\xa0,1\n".encode("latin-1")))
    with pytest.raises(DataError, match="no header"):
        read_csv(io.BytesIO(b""))


def test_binary_metrics() -> None:
    def scored(probability: float) -> Prediction:
        label = "yes" if probability >= 0.5 else "no"
        return Prediction(label=label, probabilities={"yes": probability, "no": 1 - probability})

    actual = ["yes", "yes", "no", "no"]
    metrics = classification_metrics(actual, [scored(p) for p in (0.9, 0.4, 0.3, 0.6)], "yes")
    assert metrics["accuracy"] == 0.5
    assert metrics["auc"] == 0.75
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.5, 0.5, 0.5)
    expected_loss = -(math.log(0.9) + math.log(0.4) + math.log(0.7) + math.log(0.4)) / 4
    assert metrics["log_loss"] == pytest.approx(expected_loss)
    tied = classification_metrics(actual, [scored(0.5)] * 4, "yes")
    assert tied["auc"] == 0.5
    assert classification_metrics(["yes", "yes"], [scored(0.9)] * 2, "yes")["auc"] is None


def test_multiclass_and_regression_metrics() -> None:
    predictions = [Prediction(label=label, probabilities={label: 1.0}) for label in ("a", "b", "b")]
    metrics = classification_metrics(["a", "b", "c"], predictions, None)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    values = regression_metrics([1.0, 2.0, 3.0], [Prediction(value=v) for v in (1.0, 2.0, 5.0)])
    assert values["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert values["mae"] == pytest.approx(2 / 3)
    assert values["r2"] == pytest.approx(1 - 4 / 2)


def test_ridge_recovers_a_linear_relation() -> None:
    generator = random.Random(0)
    rows = []
    for _ in range(500):
        x, group = generator.uniform(0, 10), generator.choice(["a", "b"])
        rows.append([f"{x:.4f}", group, f"{3 * x + (5 if group == 'b' else 0) + 1:.4f}"])
    table = Table(["x", "group", "y"], rows)
    model = Ridge(table, ["x", "group"], [float(row[2]) for row in rows])
    prediction = model.predict({"x": "4", "group": "b"})
    assert prediction.value == pytest.approx(18, abs=0.2)
    shares = importance(model.features, [model.predict({"x": row[0], "group": row[1]}) for row in rows])
    assert shares["x"] > shares["group"] > 0
    assert sum(shares.values()) == pytest.approx(1)


def test_naive_bayes_learns_and_explains() -> None:
    rows = [[str(v), "red" if v > 5 else "blue", "hot" if v > 5 else "cold"] for v in range(1, 11)] * 3
    table = Table(["degrees", "colour", "feel"], rows)
    labels = [row[2] for row in rows]
    model = NaiveBayes(table, ["degrees", "colour"], labels, ["hot", "cold"], target_type=BINARY, balanced=True)
    hot = model.predict({"degrees": "9", "colour": "red"})
    assert hot.label == "hot"
    assert hot.probabilities["hot"] > 0.9
    assert set(hot.contributions) == {"degrees", "colour"}
    assert all(effect > 0 for effect in hot.contributions.values())
    unseen = model.predict({"degrees": "", "colour": "green"})  # missing and unseen values are neutral
    assert unseen.probabilities["hot"] == pytest.approx(0.5, abs=0.05)
    assert model.output_header() == ["prediction", "probability"]
    assert model.output_header(with_label=False) == ["probability"]


def test_config_values_may_be_json_numbers_and_booleans() -> None:
    config = parse_config(
        {"tc": "y", "tt": "regression", "cv": 5, "tsm": True, "tsc": "d", "tsf": 1, "tst": 3, "tsine": ["a"]}
    )
    assert (config.target, config.target_type, config.positive, config.balanced) == ("y", "regression", None, False)
    assert parse_config({"tc": "y", "tt": "binary_classification", "tv": 1, "im": True}).positive == "1"
    with pytest.raises(ConfigError, match="cv must be an integer"):
        parse_config({"tc": "y", "tt": "regression", "cv": True})
