"""
Seeds of the transient-fault runs (``test_transient_faults.py``), in their own process:

    python tests/reliability/fault_run.py --seeds 7 17 --work /tmp/faults-7

Gives Airflow a fresh home and database; then for each seed starts an emulator that faults a
share of all requests (``--fault-rate``, every endpoint, presigned transfers included) with
that seed, runs the example DAGs ``predone_lifecycle`` then ``aitems_train`` against it with
``dag.test()`` (their own task retries apply) and prints one JSON line: per DAG the run
state, the try number of each task, the duration, and what the emulator counted during the
run.

Its own process, because Airflow reads its configuration once per process; a few seeds per
process, so that Airflow's start-up is paid once for them; several processes at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers import airflow_home_environment  # noqa: E402 - the tests folder is on the path first

DAG_IDS = ("predone_lifecycle", "aitems_train")
COUNTERS = (
    "trainings_started",
    "retrain_jobs_started",
    "model_switches",
    "classifiers",
    "aitems_trainings_started",
    "uploads",
    "requests",
)


def prepare_airflow(work: Path) -> None:
    """The environment ``tests/conftest.py`` prepares, before Airflow is imported."""
    os.environ.update(airflow_home_environment(work / "airflow"))
    # aitems_train sets retries but not retry_delay (default 300 s): keep a retry quick.
    os.environ["AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY"] = "5"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"


def run_dag(dag_id: str, conf: dict[str, object]) -> dict[str, object]:
    from helpers import EXAMPLES, load_dag

    started = time.monotonic()
    dag_run = load_dag(EXAMPLES, dag_id).test(run_conf=conf or None)
    tis = dag_run.get_task_instances()
    return {
        "state": str(dag_run.state),
        "tasks": {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in tis},
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--work", type=Path, default=None, help="a fresh folder (default: a temp dir)")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--slow-seconds", type=float, default=1.5)
    parser.add_argument("--timeout", type=float, default=1.0, help="the connections' request timeout")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="predone-faults-"))
    prepare_airflow(work)

    from airflow.utils import db

    db.resetdb()
    from helpers import EMULATOR_OPTIONS, aitems_connection, predone_connection

    from airflow_provider_predone.emulator import EmulatorProcess

    # A slow answer outlasts the request timeout: the client gives up on a request the
    # emulator processed, as with a lost answer.
    extras = {"timeout": args.timeout, "retry_wait_seconds": 0.05, "retry_max_wait_seconds": 1.0}
    for seed in args.seeds:
        result: dict[str, object] = {"seed": seed, "fault_rate": args.fault_rate, "runs": {}}
        with EmulatorProcess(
            test_controls=True,
            fault_rate=args.fault_rate,
            fault_seed=seed,
            slow_seconds=args.slow_seconds,
            **EMULATOR_OPTIONS,
        ) as emulator:
            os.environ["AIRFLOW_CONN_PREDONE_DEFAULT"] = predone_connection(emulator.url, **extras)
            os.environ["AIRFLOW_CONN_AITEMS_DEFAULT"] = aitems_connection(emulator.url, **extras)
            for dag_id in DAG_IDS:
                before = emulator.state()
                conf = {"output_dir": str(work / f"output-{seed}")} if dag_id == "predone_lifecycle" else {}
                run = run_dag(dag_id, conf)
                after = emulator.state()
                run["counters"] = {name: after[name] - before[name] for name in COUNTERS}
                run["faults"] = {kind: after["faults"][kind] - before["faults"][kind] for kind in after["faults"]}
                result["runs"][dag_id] = run  # type: ignore[index]
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
