"""Metric discovery in result archives of every layout the emulator can write, and on its own."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DATA, EMULATOR_OPTIONS, predone_connection

from airflow_provider_predone import files, metrics
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError, MetricNotFoundError
from airflow_provider_predone.metrics import RetrainResult, discover, metric_gate, read_metrics

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
LAYOUTS = ("summary-json", "metrics-csv-ja", "nested-json", "no-metrics")


def retrain_result(url: str, monkeypatch: pytest.MonkeyPatch, target: Path) -> list[str]:
    """Train, retrain with evaluation data, and extract the retrain result archive into ``target``."""
    from helpers import wait_for

    from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook

    API_KEYS.clear()
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(url))
    hook = PredictionOneHook()
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "layouts", CONFIG)
    wait_for("training", lambda: hook.get_train_status(urls.external_process_id).status == "finished")
    model_id = hook.find_model_id("layouts")
    assert model_id is not None
    archive = files.build_retrain_zip(
        files.resolve("train_data", DATA / "new_month.csv"),
        files.resolve("eval_data", DATA / "new_month_eval.csv"),
        target.parent / "retrain.zip",
    )
    upload = hook.get_retrain_upload_url(model_id, "retrain.zip")
    hook.upload_retrain_data(upload, model_id, files.resolve("retrain", archive, extensions=(".zip",)))
    status = wait_for(
        "retraining",
        lambda: (s := hook.get_retrain_status(upload.retrain_job_id, model_id)).status == "job_finished" and s,
    )
    assert status.download_url
    hook.download(status.download_url, target.parent / "result.zip", label="result")
    return files.safe_extract(target.parent / "result.zip", target)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, list[str]]]]:
    """The same training and retraining on one emulator per result layout (same data, same model)."""
    out = {}
    monkeypatch = pytest.MonkeyPatch()
    try:
        for layout in LAYOUTS:
            with EmulatorProcess(result_layout=layout, **EMULATOR_OPTIONS) as emulator:
                target = tmp_path_factory.mktemp(layout) / "extracted"
                out[layout] = (target, retrain_result(emulator.url, monkeypatch, target))
        yield out
    finally:
        monkeypatch.undo()


def test_each_layout_writes_different_members(layouts) -> None:
    assert "model_summary.json" in layouts["summary-json"][1]
    for layout in ("metrics-csv-ja", "nested-json", "no-metrics"):
        assert "model_summary.json" not in layouts[layout][1]
    assert "評価結果/評価指標.csv" in layouts["metrics-csv-ja"][1]
    assert "report/evaluation/result.json" in layouts["nested-json"][1]


@pytest.mark.parametrize("layout", ["metrics-csv-ja", "nested-json"])
def test_discovery_finds_the_same_metrics_in_every_layout(layouts, layout: str) -> None:
    reference = discover(layouts["summary-json"][0])
    assert reference.metrics
    assert reference.previous_metrics
    assert reference.sources == ("model_summary.json",)
    found = discover(layouts[layout][0])
    assert found.metrics == {k: v for k, v in reference.metrics.items() if v is not None}
    assert found.previous_metrics == {k: v for k, v in reference.previous_metrics.items() if v is not None}
    assert {"auc", "accuracy", "precision", "recall"} <= found.metrics.keys()
    assert found.metrics != found.previous_metrics  # new and previous were told apart


def test_no_metric_is_reported_with_the_members_and_the_way_out(layouts) -> None:
    folder, members = layouts["no-metrics"]
    found = discover(folder)
    assert found.metrics is None
    assert found.previous_metrics is None
    result = RetrainResult(folder, found.metrics, found.previous_metrics, members=found.members)
    with pytest.raises(MetricNotFoundError) as raised:
        metric_gate("auc")(result)
    message = str(raised.value)
    assert "'auc' was not found" in message
    assert all(member in message for member in members)
    assert "metrics_reader=" in message


def test_a_reader_replaces_discovery(layouts) -> None:
    folder, _ = layouts["no-metrics"]
    found = read_metrics(folder, lambda path: ({"AUC": "0.9", "notes": "x"}, {"auc": 0.8}))
    assert found.metrics == {"auc": 0.9}
    assert found.previous_metrics == {"auc": 0.8}
    with pytest.raises(InvalidInputError, match="metrics_reader must return a mapping"):
        read_metrics(folder, lambda path: 0.9)


def write_zip(tmp_path: Path, members: dict[str, bytes | str]) -> Path:
    archive = tmp_path / "result.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    target = tmp_path / "out"
    files.safe_extract(archive, target)
    return target


def test_wide_csv_with_a_previous_row_and_percentages(tmp_path: Path) -> None:
    folder = write_zip(
        tmp_path,
        {
            "predictions.csv": "row,prediction\n1,yes\n",
            # Full-width "AUC", as Japanese spreadsheets often spell it.
            "summary/scores.csv": "モデル,\uff21\uff35\uff23,Accuracy,Log-Loss\n"
            "再学習後,0.81,85.0%,0.41\n前回のモデル,0.79,83%,0.44\n",
        },
    )
    found = discover(folder)
    assert found.metrics == {"auc": 0.81, "accuracy": 0.85, "log_loss": 0.41}
    assert found.previous_metrics == {"auc": 0.79, "accuracy": 0.83, "log_loss": 0.44}
    assert found.sources == ("summary/scores.csv",)


def test_json_keys_in_any_case_and_language(tmp_path: Path) -> None:
    document = {"result": {"Evaluation": {"RMSE": 1.5, "決定係数": "0.72", "Mean Absolute Error": 1.1}}}
    document["result"]["baseline"] = {"rmse": 1.7}
    folder = write_zip(tmp_path, {"a/b.json": json.dumps(document, ensure_ascii=False)})
    found = discover(folder)
    assert found.metrics == {"rmse": 1.5, "r2": 0.72, "mae": 1.1}
    assert found.previous_metrics == {"rmse": 1.7}


def test_gate_directions_and_thresholds(tmp_path: Path) -> None:
    result = RetrainResult(tmp_path, {"rmse": 1.5, "auc": 0.8}, {"rmse": 1.7, "auc": 0.82})
    rmse = metric_gate("RMSE")(result)  # lower is better by default for error metrics
    assert rmse.accepted
    assert (rmse.threshold, rmse.previous, rmse.value) == (1.7, 1.7, 1.5)
    auc = metric_gate("auc", min_gain=0.01)(result)
    assert not auc
    assert auc.threshold == pytest.approx(0.83)
    assert auc.record() == {
        "verdict": "refused",
        "reason": auc.reason,
        "metric": "auc",
        "value": 0.8,
        "previous": 0.82,
        "threshold": auc.threshold,
    }
    first = metric_gate("auc")(RetrainResult(tmp_path, {"auc": 0.8}, None))
    assert first.accepted
    assert "no previous value" in first.reason


def test_canonical_names() -> None:
    assert metrics.canonical_name("精度") == "accuracy"
    assert metrics.canonical_name("再現率") == "recall"
    assert metrics.canonical_name("\uff32\uff12") == "r2"  # full-width
    assert metrics.canonical_name("F1 Score") == "f1"
    assert metrics.canonical_name("row_number") is None


def test_metric_gate_can_read_the_archive_itself(tmp_path: Path) -> None:
    (tmp_path / "scores.txt").write_text("auc=0.9 previous=0.8")

    def reader(folder: Path) -> tuple[dict[str, float], dict[str, float]]:
        text = (folder / "scores.txt").read_text()
        new, old = (float(part.split("=")[1]) for part in text.split())
        return {"auc": new}, {"auc": old}

    verdict = metric_gate("auc", metrics_reader=reader)(RetrainResult(tmp_path, None, None))
    assert verdict.accepted
    assert (verdict.value, verdict.previous) == (0.9, 0.8)


def test_the_summary_is_found_under_any_name_and_read_alike_with_a_reader(tmp_path: Path) -> None:
    # Not the emulator's model_summary.json: the vendor's layout is undocumented, so the version
    # a switch checks must come from whatever JSON member says it.
    summary = {"model_id": 3, "version": 2, "previous": {"version": 1, "metrics": {"auc": 0.8}}, "auc": 0.9}
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "overview.json").write_text(json.dumps(summary))
    (tmp_path / "columns.json").write_text(json.dumps({"columns": ["a", "b"], "version": "v2"}))  # no integer
    found = discover(tmp_path)
    assert found.summary == summary
    assert (found.metrics, found.previous_metrics) == ({"auc": 0.9}, {"auc": 0.8})
    assert read_metrics(tmp_path, lambda path: {"auc": 0.5}).summary == summary
    assert discover(tmp_path, max_json_bytes=10).summary is None  # too large to parse: not read


def test_the_summary_in_every_emulator_layout(layouts) -> None:
    summary = discover(layouts["summary-json"][0]).summary
    assert summary is not None
    assert isinstance(summary["version"], int)
    assert isinstance(summary["model_id"], int)
    for layout in ("metrics-csv-ja", "nested-json", "no-metrics"):  # no top-level summary object
        assert discover(layouts[layout][0]).summary is None


def test_no_production_module_names_the_emulators_result_file() -> None:
    from helpers import REPO

    package = REPO / "airflow_provider_predone"
    naming = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "emulator" not in path.relative_to(package).parts and "model_summary" in path.read_text()
    ]
    assert naming == []
