"""The switch's quality gate on an archive layout the emulator does not write by default.

Every outcome in one ``dag.test()`` run: refused (fail), refused (skip), metric missing (a
distinct failure, not a refusal), and accepted through a user's ``metrics_reader``.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from helpers import DAGS, DATA, EMULATOR_OPTIONS, predone_connection, run_dag

from airflow_provider_predone.emulator import EmulatorProcess


@pytest.fixture(scope="module")
def gate_run(airflow_db):
    from airflow_provider_predone.hooks.predone import API_KEYS

    monkeypatch = pytest.MonkeyPatch()
    logs = io.StringIO()
    try:
        with EmulatorProcess(result_layout="metrics-csv-ja", **EMULATOR_OPTIONS) as emulator:
            API_KEYS.clear()
            monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator.url))
            # dag.test() runs the tasks here and prints their log lines on stdout.
            with contextlib.redirect_stdout(logs):
                result = run_dag(DAGS, "predone_quality_gate", data=str(DATA))
            yield result, logs.getvalue().splitlines(), emulator.state()
    finally:
        monkeypatch.undo()


def test_each_gate_outcome_ends_the_task_its_own_way(gate_run) -> None:
    result, _, state = gate_run
    assert result.states == {
        "train": "success",
        "deploy": "success",
        "retrain": "success",
        "refused_fail": "failed",
        "refused_skip": "skipped",
        "metric_missing": "failed",
        "accepted": "success",
    }
    assert state["model_switches"] == 1  # only the accepted gate switched


def test_metrics_were_discovered_in_the_japanese_csv(gate_run) -> None:
    result, _, _ = gate_run
    retrained = result.xcom("retrain")
    assert {"auc", "accuracy", "precision", "recall"} <= retrained["metrics"].keys()
    assert retrained["previous_metrics"]["auc"] != retrained["metrics"]["auc"]


def test_a_refusal_is_recorded_in_xcom_with_both_sets_of_metrics(gate_run) -> None:
    result, _, _ = gate_run
    retrained = result.xcom("retrain")
    for task, metric in (("refused_fail", "auc"), ("refused_skip", "precision")):
        record = result.xcom(task)
        assert record["switched"] is False
        assert record["metrics"] == retrained["metrics"]
        assert record["previous_metrics"] == retrained["previous_metrics"]
        gate = record["quality_gate"]
        assert gate["verdict"] == "refused"
        assert gate["metric"] == metric
        assert gate["value"] == retrained["metrics"][metric]
        assert gate["previous"] == retrained["previous_metrics"][metric]
        assert gate["threshold"] == pytest.approx(gate["previous"] + 1.0)
        assert result.xcom(task, key="quality_gate") == gate


def test_the_accepted_verdict_is_in_xcom_and_the_asset_event(gate_run) -> None:
    result, _, _ = gate_run
    record = result.xcom("accepted")
    assert record["switched"] is True
    assert record["quality_gate"]["verdict"] == "accepted"
    assert record["metrics"] == {"auc": record["quality_gate"]["value"]}  # from the user's reader
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.source_run_id == result.dag_run.run_id]
    switched = [e.extra for e in events if e.extra.get("event") == "switched"]
    assert len(switched) == 1
    extra = switched[0]
    assert extra["quality_gate.verdict"] == "accepted"
    assert extra["quality_gate.threshold"] == record["quality_gate"]["threshold"]
    assert extra["metrics.auc"] == record["metrics"]["auc"]
    assert extra["previous_metrics.auc"] == record["previous_metrics"]["auc"]


def test_logs_name_metric_values_threshold_and_verdict(gate_run) -> None:
    _, messages, _ = gate_run
    # Airflow 3.0 prints some lines twice (two handlers): count distinct verdicts.
    verdicts = sorted({m[m.index("Quality gate on retrain job") :] for m in messages if "Quality gate on retrain" in m})
    assert len(verdicts) == 3  # refused twice, accepted once; the missing metric is no verdict
    refused = next(m for m in verdicts if "REFUSED" in m and "auc" in m)
    assert all(word in refused for word in ("threshold", "previous", "min_gain 1.0"))
    assert any("ACCEPTED" in m for m in verdicts)
    assert any("on_refusal='skip'" in m for m in messages)


def test_a_missing_metric_says_so_and_lists_the_members(gate_run) -> None:
    _, messages, _ = gate_run
    # Tracebacks may be drawn in boxes that wrap lines (Airflow 3.0): compare without layout.
    compact = re.sub(r"[\s│]+", "", "".join(messages))
    assert "MetricNotFoundError" in compact
    start = compact.index("Metric'rmse'wasnotfound")
    assert "評価結果/評価指標.csv" in compact[start : start + 600]
    assert "metrics_reader=" in compact[start : start + 600]
    assert not any("refused" in m.lower() and "rmse" in m for m in messages)
