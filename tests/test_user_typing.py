"""What a user's type checker says about a DAG using this provider (``mypy --strict``).

Every id parameter is a template field, so an XComArg (``train.output["model_id"]``) or a
template string must type-check; the waiting parameters are typed keywords, so
``deferrable="yes"`` must not, and ``on_refusal`` takes only its two values.

One mypy run over three DAG files (a good one and two bad ones) in a temp dir, as a user would
run it: ``--strict``, and the package's own modules analysed but not reported
(``--follow-imports=silent``, as for an installed package). Its cache lives in pytest's cache
dir, so only the first run pays for analysing Airflow (30-60 s). Also: Airflow's own ruff rules
(``AIR``) over the package and the example DAGs users copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

GOOD_DAG = """
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_provider_predone.operators.aitems import AitemsDatasetOperator, AitemsTrainOperator
from airflow_provider_predone.operators.approval import PredictionOneApproveSwitchOperator
from airflow_provider_predone.operators.predone import (
    ArchiveLimits,
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneDeleteDataSetOperator,
    PredictionOneDeleteModelOperator,
    PredictionOneDeletePredictionApiOperator,
    PredictionOneListDataSetsOperator,
    PredictionOneListModelsOperator,
    PredictionOneListPredictionApisOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
    RetrainResult,
    metric_gate,
)
from airflow_provider_predone.sensors.aitems import AitemsDatasetSensor, AitemsTrainingSensor
from airflow_provider_predone.sensors.predone import (
    PredictionOnePredictionApiSensor,
    PredictionOneRetrainSensor,
    PredictionOneTrainSensor,
)


def has_metrics(result: RetrainResult) -> bool:
    return result.metrics is not None


with DAG(
    "user_typing",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"model_id": Param(1, type="integer")},
):
    train = PredictionOneTrainOperator(
        task_id="train",
        train_data="/data/train.csv",
        model_name="churn",
        config={"tc": "churned", "tt": "binary_classification", "tv": "yes"},
        result_limits=ArchiveLimits(),
        wait_for_completion=True,
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=6),
        success_statuses=["finished"],
        failure_statuses=["failed"],
        running_statuses=["running", "queued"],
    )
    started = PredictionOneTrainOperator(
        task_id="start_training",
        train_data="/data/train.csv",
        model_name="churn",
        config={"tc": "churned", "tt": "binary_classification"},
        wait_for_completion=False,
    )
    PredictionOneTrainSensor(
        task_id="wait_for_training",
        external_process_id=started.output["external_process_id"],
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=3600,
        end_from_trigger=True,
    )
    deploy = PredictionOneCreatePredictionApiOperator(
        task_id="deploy",
        model_id=train.output["model_id"],
        deferrable=False,
        poll_interval=2.5,
        timeout=600,
    )
    PredictionOnePredictionApiSensor(
        task_id="wait_for_api",
        classifier_id=deploy.output["classifier_id"],
        start_from_trigger=True,
        end_from_trigger=True,
    )
    PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=deploy.output["classifier_id"],
        input_data="/data/score.csv",
        output_data="/data/predictions.csv",
    )
    retrain = PredictionOneRetrainOperator(
        task_id="retrain",
        model_id="{{ params.model_id }}",
        train_data="/data/new_month.csv",
        deferrable=None,
        wait_for_completion=False,
    )
    PredictionOneRetrainSensor(
        task_id="wait_for_retrain",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=retrain.output["model_id"],
        deferrable=True,
        poke_interval=5,
        timeout=timedelta(hours=6),
        success_statuses=["finished"],
    )
    PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id=retrain.output["retrain_job_id"],
        model_id=42,
        quality_gate=metric_gate("auc"),
        on_refusal="skip",
        allow_older=False,
    )
    PredictionOneApproveSwitchOperator(
        task_id="approve",
        retrain_job_id=retrain.output,
        quality_gate=has_metrics,
        on_refusal="fail",
        subject="Switch?",
        response_timeout=timedelta(days=2),
    )
    models = PredictionOneListModelsOperator(task_id="list_models")
    PredictionOneListDataSetsOperator(task_id="list_data_sets")
    PredictionOneListPredictionApisOperator(task_id="list_prediction_apis")
    PredictionOneDeletePredictionApiOperator(
        task_id="delete_api", classifier_id="{{ ti.xcom_pull(task_ids='deploy')['classifier_id'] }}"
    )
    PredictionOneDeleteModelOperator(task_id="delete_model", model_id=train.output["model_id"], missing_ok=True)
    PredictionOneDeleteDataSetOperator(task_id="delete_data_set", data_set_id=7)

    @task
    def service_id() -> str:
        return "svc-1"

    service = service_id()
    aitems = AitemsTrainOperator(
        task_id="aitems_train",
        service_id=service,
        train_types=["personalRecommend", "pop"],
        deferrable=True,
        poll_interval=10,
        timeout=6 * 3600,
    )
    AitemsTrainingSensor(
        task_id="wait_for_pop",
        service_id=aitems.output["service_id"],
        train_type="pop",
        version="{{ ti.xcom_pull(task_ids='aitems_train')['versions']['pop'] }}",
        deferrable=True,
        poke_interval=10,
        timeout=3600,
    )
    AitemsTrainingSensor(task_id="wait_for_version_3", service_id=12, train_type="pop", version=3)

    @task
    def todays_key() -> str:
        return "exports/clicks.csv"

    clicks = AitemsDatasetOperator(
        task_id="register_clicks",
        dataset_type="interaction",
        name="clicks_{{ ds_nodash }}",
        schema_name="shop_clicks",
        bucket="shop-data",
        key=todays_key(),
        deferrable=True,
        poll_interval=10,
    )
    AitemsDatasetSensor(task_id="wait_for_clicks", dataset_id=clicks.output["dataset_id"], poke_interval=10)
    train >> models
"""

# Each line marked ``# error: NAME`` must get an error naming the argument NAME; no other line may.
BAD_DEFERRABLE_DAG = """
from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_predone.operators.aitems import AitemsDatasetOperator, AitemsTrainOperator
from airflow_provider_predone.operators.predone import (
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneTrainOperator,
)
from airflow_provider_predone.sensors.aitems import AitemsTrainingSensor
from airflow_provider_predone.sensors.predone import (
    PredictionOnePredictionApiSensor,
    PredictionOneRetrainSensor,
    PredictionOneTrainSensor,
)

with DAG("bad_deferrable", schedule=None, start_date=datetime(2026, 1, 1)):
    PredictionOneTrainOperator(
        task_id="train",
        train_data="/data/train.csv",
        model_name="churn",
        config={"tc": "churned", "tt": "regression"},
        deferrable="yes",  # error: deferrable
    )
    PredictionOneRetrainOperator(
        task_id="retrain",
        model_id=1,
        train_data="/data/new.csv",
        deferrable="yes",  # error: deferrable
        wait_for_completion="no",  # error: wait_for_completion
    )
    PredictionOneCreatePredictionApiOperator(
        task_id="deploy",
        model_id=1,
        deferrable="yes",  # error: deferrable
        timeout="1h",  # error: timeout
    )
    AitemsTrainOperator(
        task_id="aitems",
        service_id="svc",
        train_types=["pop"],
        deferrable="yes",  # error: deferrable
        poll_interval="60",  # error: poll_interval
    )
    PredictionOneTrainSensor(
        task_id="wait_train",
        external_process_id="p",
        deferrable="yes",  # error: deferrable
        end_from_trigger="yes",  # error: end_from_trigger
    )
    PredictionOneRetrainSensor(
        task_id="wait_retrain",
        retrain_job_id="r",
        model_id=1,
        deferrable="yes",  # error: deferrable
        timeout="1h",  # error: timeout
    )
    PredictionOnePredictionApiSensor(
        task_id="wait_api",
        classifier_id="c",
        deferrable="yes",  # error: deferrable
        poke_interval="5",  # error: poke_interval
    )
    AitemsDatasetOperator(
        task_id="dataset",
        dataset_type="users",  # error: dataset_type
        name="d",
        schema_name="shop_users",
        bucket="shop-data",
        key="k.csv",
        deferrable="yes",  # error: deferrable
    )
    AitemsTrainingSensor(
        task_id="wait_aitems",
        service_id="svc",
        train_type="pop",
        version="1",
        deferrable="yes",  # error: deferrable
        success_statuses=1,  # error: success_statuses
    )
"""

BAD_ON_REFUSAL_DAG = """
from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_predone.operators.approval import PredictionOneApproveSwitchOperator
from airflow_provider_predone.operators.predone import PredictionOneSwitchModelOperator

with DAG("bad_on_refusal", schedule=None, start_date=datetime(2026, 1, 1)):
    PredictionOneSwitchModelOperator(
        task_id="switch",
        retrain_job_id="r",
        on_refusal="skipp",  # error: on_refusal
    )
    PredictionOneApproveSwitchOperator(
        task_id="approve",
        retrain_job_id="r",
        on_refusal="Skip",  # error: on_refusal
    )
"""

DAGS = {"good_dag.py": GOOD_DAG, "bad_deferrable.py": BAD_DEFERRABLE_DAG, "bad_on_refusal.py": BAD_ON_REFUSAL_DAG}
ERROR = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+): error: (?P<message>.*)$")


def expected_errors(source: str) -> dict[int, str]:
    """``{line: argument}`` for the lines marked ``# error: argument``."""
    marked = (re.search(r"# error: (\w+)$", text) for text in source.splitlines())
    return {number: match.group(1) for number, match in enumerate(marked, start=1) if match}


def run_mypy(folder: Path, cache_dir: Path) -> dict[str, dict[int, str]]:
    """``{file: {line: message}}`` of one ``mypy --strict`` run over the DAG files in ``folder``."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(cache_dir),
            *DAGS,
        ],
        cwd=folder,  # away from the repository's own mypy settings
        # The checkout, as mypy cannot see through the editable install's import hook.
        env={**os.environ, "MYPYPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=280,
    )
    errors: dict[str, dict[int, str]] = {name: {} for name in DAGS}
    for text in result.stdout.splitlines():
        match = ERROR.match(text)
        assert match, f"mypy said: {text}\n{result.stdout}{result.stderr}"
        assert match["file"] in DAGS, f"mypy said: {text}\n{result.stdout}{result.stderr}"
        errors[match["file"]].setdefault(int(match["line"]), match["message"])
    assert result.returncode == (1 if any(errors.values()) else 0), result.stdout + result.stderr
    return errors


# One test, so that one pytest-xdist worker runs mypy, once.
def test_mypy_strict_passes_a_user_dag_and_names_each_wrong_waiting_parameter_or_on_refusal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for name, source in DAGS.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    # One cache per virtualenv: each has its own Airflow.
    cache_dir = cache.mkdir(f"mypy-user-typing-{Path(sys.prefix).name}") if cache else tmp_path / ".mypy_cache"
    errors = run_mypy(tmp_path, cache_dir)

    # All operators and sensors, XComArgs and templates for ids, typed waiting keywords: clean.
    assert errors["good_dag.py"] == {}
    # deferrable="yes" (and other wrong waiting keywords) and on_refusal="skipp": an error each.
    for name in ("bad_deferrable.py", "bad_on_refusal.py"):
        expected = expected_errors(DAGS[name])
        assert expected
        assert set(errors[name]) == set(expected), (name, errors[name])
        for line, argument in expected.items():
            assert f'Argument "{argument}"' in errors[name][line], (name, line, errors[name][line])


def test_the_package_and_the_example_dags_follow_airflows_ruff_rules() -> None:
    """Airflow's own lint rules (ruff's ``AIR``, some of them preview rules), as ``make lint`` runs them."""
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--preview", "--select", "AIR"]
    result = subprocess.run(
        [*ruff, "airflow_provider_predone", "example_dags"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
