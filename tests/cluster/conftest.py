"""
Fixtures of the cluster tests: PostgreSQL, Redis, the emulator and one Airflow deployment
(api-server, scheduler, dag-processor, two Celery workers, two triggerers) for the module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RELIABILITY = Path(__file__).resolve().parent.parent / "reliability"
# The reliability suite's Airflow fixture, reused (the tests folders are not packages).
sys.path[:0] = [str(RELIABILITY.parent / "cluster"), str(RELIABILITY)]

from celery_cluster import HERE, SECRET_KEY, CeleryCluster, running_celery_cluster  # noqa: E402
from helpers import DAGS, EXAMPLES  # noqa: E402
from services import Postgres, Redis  # noqa: E402

from airflow_provider_predone.emulator import EmulatorProcess  # noqa: E402

#: The example DAGs (their folder, with its data) and the reliability DAG; the load test
#: links its own DAG in once it has written the job ids that DAG reads.
DAG_FILES = [EXAMPLES, DAGS / "reliability_cluster.py"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    # test_controls: the tests use the holds, reset and /_emulator/secrets.
    with EmulatorProcess(secret_key=SECRET_KEY, job_seconds=1.0, build_seconds=1.0, test_controls=True) as process:
        yield process


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    server = Redis()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def cluster(
    emulator: EmulatorProcess, postgres: Postgres, redis: Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryCluster]:
    env = {
        "AIRFLOW_CONN_PREDONE_DEFAULT": json.dumps(
            {"conn_type": "predone", "host": emulator.url, "password": SECRET_KEY}
        ),
        # masking_probe for the tasks and the triggerers; cluster_hostname for every component
        "PYTHONPATH": f"{RELIABILITY}:{HERE}",
    }
    home = tmp_path_factory.mktemp("celery-cluster")
    with running_celery_cluster(home, DAG_FILES, env, postgres, redis) as cluster:
        yield cluster
