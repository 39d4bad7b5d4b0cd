"""``make demo``'s summary says what it measured and where the logs really are (scripts/demo.py).

The whole demo runs in ``tests/reliability/test_demo_secrets.py``, which also checks that the
log files named here hold the task log lines.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from helpers import REPO


def demo_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_summary_says_the_same_file_was_scored_twice() -> None:
    demo = demo_script()
    summary = {"rows_scored": 1000, "rows_scored_each": [500, 500], "model_versions": [1, 2]}
    line = demo.scoring_line(summary)
    assert line == "500 rows before the switch by model version 1, the same 500 after it by model version 2"
    assert "1000" not in line
    assert demo.scoring_line({"rows_scored": 1000}) == "1000 rows in all"  # a summary of an older DAG


def test_the_summary_names_the_log_files_the_demo_writes(tmp_path: Path) -> None:
    demo = demo_script()
    line = demo.logs_line(tmp_path, tmp_path / "airflow")
    assert line == (
        f"Task logs: {tmp_path}/predone_lifecycle.log, {tmp_path}/aitems_train.log, "
        f"{tmp_path}/predone_forecast.log, {tmp_path}/aitems_recommendations.log (Airflow home: {tmp_path}/airflow)"
    )
    # ``airflow dags test`` runs the tasks in its own process: Airflow's log folder stays empty.
    assert "logs" not in line.split("(")[1]
    assert [demo.log_file(tmp_path, d) for d in demo.DAG_IDS] == [
        tmp_path / "predone_lifecycle.log",
        tmp_path / "aitems_train.log",
        tmp_path / "predone_forecast.log",
        tmp_path / "aitems_recommendations.log",
    ]


def test_the_summary_shows_the_gate_verdict() -> None:
    demo = demo_script()
    gate = {"verdict": "accepted", "metric": "auc", "value": 0.8124, "previous": 0.5803, "threshold": 0.5803}
    assert demo.verdict_line(gate) == "auc 0.812 vs previous 0.580, threshold 0.580: accepted"
    custom = {"verdict": "refused", "reason": "quality_gate mine returned False"}
    assert demo.verdict_line(custom) == "refused (quality_gate mine returned False)"
    assert demo.verdict_line(None) == "not recorded"


def test_the_summary_shows_the_forecast(capsys) -> None:
    demo = demo_script()
    summary = {
        "metrics_trained": {"rmse": 12.72},
        "metrics_before": {"rmse": 55.1},
        "metrics_after": {"rmse": 40.9},
        "quality_gate": {"verdict": "accepted", "metric": "rmse", "value": 40.9, "previous": 55.1, "threshold": 55.1},
        "forecasts": {"2026-01": {"umeda": 644.5, "sakae": 470.6}},
    }
    demo.print_forecast(summary, Path("/tmp/out"))
    printed = capsys.readouterr().out
    assert "rmse on 2026-Q1    55.1 forecast -> 40.9 retrained" in printed
    assert "rmse 40.900 vs previous 55.100, threshold 55.100: accepted" in printed
    assert "2026-01            sakae 471, umeda 644" in printed
    demo.print_forecast({}, Path("/tmp/out"))  # a run that failed early still prints


def test_the_demo_runs_the_nightly_aitems_dag_with_its_bucket(tmp_path: Path) -> None:
    demo = demo_script()
    assert "aitems_recommendations" in demo.DAG_IDS
    conf = demo.dag_conf("aitems_recommendations", tmp_path)
    assert conf == {"output_dir": str(tmp_path / "recommendations"), "bucket": demo.BUCKET}
    assert demo.dag_conf("aitems_train", tmp_path) == {}  # the others' conf is as before
    assert demo.dag_conf("predone_forecast", tmp_path) == {"output_dir": str(tmp_path / "forecast")}


def test_the_summary_shows_the_recommendations(capsys) -> None:
    demo = demo_script()
    dataset = {"name": "shop_users_20261207", "dataset_id": "d1", "bucket": "aitems-demo", "key": "shop/u.csv"}
    results = {
        "register_users": dataset,
        "service": {"name": "shop_reco_nightly", "service_id": "s1", "created": True, "status": "learnable"},
        "train": {
            "versions": {"relatedItem": "v2", "personalRecommend": "v1"},
            "statuses": {"relatedItem": "completed"},
        },
        "recommend_for_users": {"targets": 20, "empty": 1, "rows": 1742, "output": "/tmp/out/for_users.csv"},
    }
    demo.print_recommendations(results)
    printed = capsys.readouterr().out
    assert "dataset user       shop_users_20261207 (d1) from s3://aitems-demo/shop/u.csv" in printed
    assert "service            shop_reco_nightly (s1, created): learnable" in printed
    assert "trainings          personalRecommend v1 None, relatedItem v2 completed" in printed
    assert "for users          20 targets (1 without any), 1742 recommendations -> /tmp/out/for_users.csv" in printed
    assert "related items      not written" in printed
    demo.print_recommendations({})  # a run that failed early still prints
