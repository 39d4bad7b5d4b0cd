"""Helpers shared by the tests: constants, connections for the emulator, running DAGs.

Importable as ``helpers`` (the tests folder is on ``sys.path``); it imports Airflow only inside
functions, so the environment prepared by ``conftest.py`` is in place first.
"""

from __future__ import annotations

import inspect
import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "tests" / "dags"
EXAMPLES = REPO / "example_dags"
SECRET_KEY = "predone-demo-secret-key"
AITEMS_ACCESS_KEY = "demo-aitems-access-key"
AITEMS_SECRET_KEY = "demo-aitems-secret-key"
DATA = REPO / "example_dags" / "data"

# Short jobs keep the suite fast; the lifecycle is the same as with the defaults.
EMULATOR_OPTIONS = {"job_seconds": 1.0, "build_seconds": 0.5}


def predone_connection(url: str, **extra: object) -> str:
    """
    A ``predone`` connection for ``AIRFLOW_CONN_*``, pointing at an emulator, with the service
    set as in production (it names the service in asset URIs, host or not).
    """
    extra = {"service": "prediction_one", **extra}
    return json.dumps({"conn_type": "predone", "host": url, "password": SECRET_KEY, "extra": extra})


def aitems_connection(
    url: str, secret: str = AITEMS_SECRET_KEY, object_storage_endpoint: str | None = None, **extra: object
) -> str:
    """
    An ``aitems`` connection for ``AIRFLOW_CONN_*``, pointing at an emulator, and at an object
    storage server (``tests/object_storage.py``) when ``object_storage_endpoint`` is given.
    """
    if object_storage_endpoint is not None:
        extra = {"object_storage_endpoint": object_storage_endpoint, **extra}
    return json.dumps(
        {"conn_type": "aitems", "host": url, "login": AITEMS_ACCESS_KEY, "password": secret, "extra": extra}
    )


def airflow_home_environment(home: Path) -> dict[str, str]:
    """
    A throw-away Airflow home for ``dag.test()``, as environment variables to set before
    Airflow is imported: a sqlite database, no Airflow examples, and a DAGs folder linking the
    example DAGs and the DAGs written for the tests (``dag.test()`` runs only DAGs of a
    configured bundle).
    """
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "example_dags").symlink_to(EXAMPLES, target_is_directory=True)
    (dags / "test_dags").symlink_to(DAGS, target_is_directory=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # No SIGALRM timer around DAG file parsing: Airflow's replaced pytest-timeout's handler
        # and cleared its timer, so a test that had parsed a DAG could hang for ever (one did in CI).
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",
        # dag.test() runs each trigger inline, with no executor: no deferral race to wait out
        # (docs/deferrable.md); the first poll comes one poll interval after the task's check.
        "AIRFLOW__PREDONE__MIN_FIRST_POLL_DELAY": "0",
    }


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class DagRunResult:
    """A finished ``dag.test()`` run: task states and XComs, read from the metadata database."""

    def __init__(self, dag_run: object) -> None:
        self.dag_run = dag_run
        self.states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}

    def xcom(self, task_id: str, key: str = "return_value") -> object:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(
                run_id=self.dag_run.run_id, dag_ids=self.dag_run.dag_id, task_ids=task_id, key=key
            )
            row = session.scalars(query).first()
            return XComModel.deserialize_value(row) if row is not None else None


def _dagbag(folder: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag
    bag = DagBag(str(folder), include_examples=False) if _dagbag_takes_examples(DagBag) else DagBag(str(folder))
    unexpected = {path: error for path, error in bag.import_errors.items() if not needs_newer_airflow(path, error)}
    assert not unexpected, unexpected
    return bag


#: example DAGs that need a newer Airflow than 3.0, with the message their parse fails with there
NEWER_AIRFLOW_EXAMPLES = {"predone_retrain_with_approval.py": "needs Airflow 3.1 or newer"}


def needs_newer_airflow(path: str, error: str) -> bool:
    """An example DAG's expected parse error on Airflow 3.0 (human-in-the-loop needs 3.1)."""
    from airflow import __version__

    expected = NEWER_AIRFLOW_EXAMPLES.get(Path(path).name)
    return __version__.startswith("3.0.") and expected is not None and expected in error


def load_dag(folder: Path, dag_id: str) -> object:
    dag = _dagbag(folder).get_dag(dag_id)
    assert dag is not None, f"{dag_id} not found in {folder}"
    return dag


def sync_to_db(folder: Path) -> None:
    """
    Write the DAGs of ``folder`` to the metadata database, as the DAG processor does, so that
    an asset event finds the DAGs scheduled on it. ``dag.test()`` does this for its bundle
    from Airflow 3.1 on; Airflow 3.0 writes only the DAG under test.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = _dagbag(folder)
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    except ImportError:  # Airflow < 3.1
        bag.sync_to_db("dags-folder", None)
    else:
        sync_bag_to_db(bag, "dags-folder", None)


def _dagbag_takes_examples(dagbag_cls: type) -> bool:
    return "include_examples" in inspect.signature(dagbag_cls.__init__).parameters


def run_dag(folder: Path, dag_id: str, **conf: object) -> DagRunResult:
    """Run a DAG of ``folder`` with ``dag.test()`` (tasks and triggers in this process)."""
    from airflow import settings

    # An in-process api-server app (tests/plugins, the approval reviewers) can leave the ORM
    # disposed behind it, depending on which tests an xdist worker ran before: dag.test() then
    # fails with "Session not configured" (seen once in a fresh-clone run).
    if settings.Session is None:
        settings.configure_orm()
    return DagRunResult(load_dag(folder, dag_id).test(run_conf=conf or None))


@contextmanager
def alarm_restored() -> Iterator[None]:
    """Restore pytest-timeout's SIGALRM handler and timer after a test sets an alarm of its own
    (Airflow's ``timeout()`` leaves its handler behind and clears the timer)."""
    handler, remaining = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)[0]
    started = time.monotonic()
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, handler)
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, max(remaining - (time.monotonic() - started), 0.001))
