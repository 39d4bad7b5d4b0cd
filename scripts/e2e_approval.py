"""
End-to-end check of the human approval before a model switch, in a real browser (``make e2e``).

A real Airflow (api-server, scheduler with the LocalExecutor, dag-processor, triggerer) on
127.0.0.1 with the emulator: ``predone_train`` trains a model, the script deploys it, then
``predone_retrain_with_approval`` runs twice. Each time headless Chromium opens the task's
"Required Actions" page in Airflow's UI, checks that the metrics table is shown, and clicks
**Approve** (first run: the model is switched exactly once, the emulator tells) or **Reject**
(second run: the task is skipped, nothing more is switched). Every wait is bounded.
Screenshots go to ``.demo/e2e/approval/*.png``. Exit status 0 when every check passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_connection_form as e2e  # the shared set-up: chromium, ports, the api-server
from e2e_connection_form import CheckFailed, check, say

ROOT = e2e.ROOT
WORK = ROOT / ".demo" / "e2e" / "approval"
HOME = WORK / "airflow"
EXAMPLES = ROOT / "example_dags"
DAG_ID = "predone_retrain_with_approval"
TASK_ID = "approve_and_switch"
RUN_SECONDS = 300
UI_WAIT_SECONDS = 60

T = TypeVar("T")


def until(what: str, probe: Callable[[], T | None], timeout: float = RUN_SECONDS, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def environment(emulator_url: str, port: int) -> dict[str, str]:
    dags = HOME / "dags"
    (dags / "data").mkdir(parents=True)
    for name in ("predone_train.py", f"{DAG_ID}.py"):
        shutil.copy(EXAMPLES / name, dags)
    for name in ("train.csv", "eval.csv", "new_month.csv", "new_month_eval.csv"):
        shutil.copy(EXAMPLES / "data" / name, dags / "data")
    env = e2e.airflow_env()
    env.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW_CONN_PREDONE_DEFAULT": json.dumps(
                {"conn_type": "predone", "host": emulator_url, "password": "predone-demo-secret-key"}
            ),
        }
    )
    return env


@contextmanager
def airflow_process(name: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    log_path = WORK / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [e2e.airflow_bin(), name, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            e2e.stop_group(process, grace=30)


class Api:
    """Airflow's REST API with a token (every visitor is an admin here)."""

    def __init__(self, base_url: str) -> None:
        import requests

        self.base_url, self.session = base_url, requests.Session()
        token = e2e.http_json(f"{base_url}/auth/token")["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        if answer.status_code >= 400:
            raise CheckFailed(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        until(f"{dag_id} parsed", lambda: self._parsed(dag_id), timeout=120)
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def _parsed(self, dag_id: str) -> bool:
        answer = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30)
        return answer.status_code == 200

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        state: str | None = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").get("state")
        return state

    def awaits_person(self, dag_id: str, run_id: str, task_id: str) -> bool:
        return self.task_state(dag_id, run_id, task_id) in ("awaiting_input", "deferred")

    def finished(self, dag_id: str, run_id: str) -> str:
        def state() -> str | None:
            value = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return value if value in ("success", "failed") else None

        return until(f"{dag_id} run {run_id} to finish", state)


def review_in_browser(driver: Any, base_url: str, run_id: str, choice: str, shot: str) -> None:
    """Open the pending request in the UI, check the metrics table, click ``choice``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, UI_WAIT_SECONDS)

    def find(what: str, xpath: str) -> Any:
        try:
            return wait.until(lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None))
        except TimeoutException:
            driver.save_screenshot(str(WORK / f"failure-{shot}"))
            raise CheckFailed(f"timed out after {UI_WAIT_SECONDS} s waiting for {what}") from None

    driver.get(f"{base_url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK_ID}/required_actions")
    table = find("the metrics table", "//table[.//th[contains(., 'Retrained model')]]")
    text = table.text
    check("Served model" in text and "auc" in text, f"the request shows the metrics table ({choice} run)")
    find("the quality gate's verdict", "//*[contains(., 'Quality gate')]")
    button = find(f"the {choice} button", f"//button[normalize-space(.)='{choice}']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    time.sleep(0.5)
    driver.save_screenshot(str(WORK / shot))
    say(f"  screenshot {(WORK / shot).relative_to(ROOT)}")
    button.click()


def run() -> None:
    started = time.monotonic()
    e2e.ensure_chromium()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    from airflow_provider_predone.emulator import EmulatorProcess

    port = e2e.free_port()
    with ExitStack() as stack:
        emulator = stack.enter_context(EmulatorProcess(test_controls=True, job_seconds=1.0, build_seconds=0.5))
        env = environment(emulator.url, port)
        say(f"airflow db migrate (AIRFLOW_HOME={HOME.relative_to(ROOT)})")
        migrate = subprocess.run([e2e.airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True)
        (WORK / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode:
            raise CheckFailed(f"airflow db migrate failed; see {WORK / 'db-migrate.log'}")
        stack.enter_context(airflow_process("api-server", env, "--host", "127.0.0.1", "--port", str(port)))
        base_url = f"http://127.0.0.1:{port}"
        until("the api-server", lambda: _healthy(base_url), timeout=180, interval=0.5)
        for name in ("scheduler", "dag-processor", "triggerer"):
            stack.enter_context(airflow_process(name, env))
        api = Api(base_url)

        train_run = api.trigger("predone_train", {"result_dir": str(WORK / "result")})
        check(api.finished("predone_train", train_run) == "success", "predone_train trained a model")
        os.environ["AIRFLOW_CONN_PREDONE_DEFAULT"] = env["AIRFLOW_CONN_PREDONE_DEFAULT"]
        from airflow_provider_predone.hooks.predone import PredictionOneHook

        PredictionOneHook().create_prediction_api(1)  # a switch needs a deployed model

        driver = e2e.start_browser()
        stack.callback(driver.quit)
        for choice, shot, expected_state, switches in (
            ("Approve", "approval-request.png", "success", 1),
            ("Reject", "rejection-request.png", "skipped", 1),
        ):
            run_id = api.trigger(DAG_ID, {"model_id": 1})
            waiting = until(f"{TASK_ID} to wait for a person", partial(api.awaits_person, DAG_ID, run_id, TASK_ID))
            check(waiting, f"{TASK_ID} waits for a person, holding no worker")
            review_in_browser(driver, base_url, run_id, choice, shot)
            check(api.finished(DAG_ID, run_id) == "success", f"the {choice} run finished")
            state = api.task_state(DAG_ID, run_id, TASK_ID)
            check(state == expected_state, f"after {choice}, {TASK_ID} is {expected_state} (saw {state})")
            record = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/approval")
            decision = json.loads(record["value"]) if isinstance(record["value"], str) else record["value"]
            check(
                decision.get("decision") == ("approved" if choice == "Approve" else "rejected"),
                f"the XCom records the decision and who took it ({decision})",
            )
            counted = emulator.state()["model_switches"]
            check(counted == switches, f"after {choice}: the emulator counts {counted} switch(es), expected {switches}")
            driver.get(f"{base_url}/dags/{DAG_ID}/runs/{run_id}")
            time.sleep(2)
            driver.save_screenshot(str(WORK / f"run-after-{choice.lower()}.png"))
    say(f"PASSED in {time.monotonic() - started:.0f} s; screenshots in {WORK.relative_to(ROOT)}/")


def _healthy(base_url: str) -> bool:
    try:
        status: object = e2e.http_json(f"{base_url}/api/v2/monitor/health", timeout=2)["metadatabase"]["status"]
    except (OSError, ValueError, KeyError):
        return False
    return status == "healthy"


def main() -> int:
    try:
        run()
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
