"""
End-to-end check of the "Models" page (the provider's Airflow UI plugin) in a real browser
(``make e2e``).

A real Airflow (api-server, scheduler with the LocalExecutor, dag-processor, triggerer) on
127.0.0.1 with the emulator, and the simple auth manager with a password (no "everybody is an
admin"): ``predone_lifecycle`` trains a model, scores, retrains and switches (the gate accepts),
then ``predone_retrain_with_approval`` retrains once more and the review is rejected through
Airflow's REST API. Headless Chromium signs in on Airflow's login page, opens the "Models"
entry of the UI, and checks on the page: one point per (re)training with the right outcome
(trained, switched, rejected by the user), the version served, and rows scored; it follows a
task's "Model history" extra link from the task's page in the UI to the model's page; a
request without credentials is refused. Every wait is bounded. Screenshots go to
``.demo/e2e/models/*.png``. Exit status 0 when every check passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_approval  # the Airflow processes, the REST API, bounded waits
import e2e_connection_form as e2e  # chromium, ports
from e2e_connection_form import CheckFailed, check, say

ROOT = e2e.ROOT
WORK = ROOT / ".demo" / "e2e" / "models"
HOME = WORK / "airflow"
EXAMPLES = ROOT / "example_dags"
USER, PASSWORD = "alice", "models-page-e2e"
MODEL_URI = "predone://prediction_one/models/1"
UI_WAIT_SECONDS = 60
#: how long the "reviewer" reads the request before answering
REVIEW_SECONDS = 12
POINT = re.compile(r'<g class="point [^"]*" data-kind="([^"]*)" data-outcome="([^"]*)"')


def environment(emulator_url: str, port: int) -> dict[str, str]:
    dags = HOME / "dags"
    (dags / "data").mkdir(parents=True)
    for name in ("predone_lifecycle.py", f"{e2e_approval.DAG_ID}.py"):
        shutil.copy(EXAMPLES / name, dags)
    for name in ("train.csv", "eval.csv", "score.csv", "new_month.csv", "new_month_eval.csv"):
        shutil.copy(EXAMPLES / "data" / name, dags / "data")
    passwords = HOME / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
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
            # A user with a password: the page must be refused to anyone without credentials.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW_CONN_PREDONE_DEFAULT": json.dumps(
                {"conn_type": "predone", "host": emulator_url, "password": "predone-demo-secret-key"}
            ),
        }
    )
    return env


@contextmanager
def airflow_process(name: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with (WORK / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [e2e.airflow_bin(), name, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            e2e.stop_group(process, grace=30)


class Api(e2e_approval.Api):
    """Airflow's REST API with the token of a user signed in with a password."""

    def __init__(self, base_url: str) -> None:
        import requests

        self.base_url, self.session = base_url, requests.Session()
        answer = requests.post(f"{base_url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
        if answer.status_code >= 400:
            raise CheckFailed(f"POST /auth/token: {answer.status_code} {answer.text[:300]}")
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def reject(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Answer the pending review "Reject", as the Required actions page does."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        self.call("PATCH", path, json={"chosen_options": ["Reject"], "params_input": {}})


def find(driver: Any, what: str, xpath: str, shot: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, UI_WAIT_SECONDS).until(
            lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None)
        )
    except TimeoutException:
        driver.save_screenshot(str(WORK / f"failure-{shot}.png"))
        raise CheckFailed(f"timed out after {UI_WAIT_SECONDS} s waiting for {what}") from None


def shoot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(WORK / name))
    say(f"  screenshot {(WORK / name).relative_to(ROOT)}")


def sign_in(driver: Any, base_url: str) -> None:
    """Airflow's own login page (simple auth manager): user name, password, Sign in."""
    driver.get(f"{base_url}/auth/login")
    find(driver, "the login form", "//input[@name='username']", "login").send_keys(USER)
    find(driver, "the password box", "//input[@type='password']", "login").send_keys(PASSWORD)
    find(driver, "the Sign in button", "//button[@type='submit']", "login").click()
    find(driver, "the UI's Models entry after signing in", "//a[contains(@href, '/plugin/predone-models')]", "home")
    cookies = {c["name"] for c in driver.get_cookies()}
    check("_token" in cookies, f"signed in as {USER} on Airflow's login page (the UI's JWT cookie is set)")


def model_section(html: str) -> str:
    start = html.index(f'data-uri="{MODEL_URI}"')
    return html[start : html.find("</section>", start)]


def check_page(driver: Any, base_url: str, lifecycle: dict[str, Any], rejected_by: str) -> None:
    """The page inside Airflow's UI (its nav entry), then its content, wide and narrow."""
    driver.get(f"{base_url}/plugin/predone-models")
    frame = find(driver, "the Models page in the UI", "//iframe[contains(@src, '/predone-models/')]", "nav")
    entry = find(driver, "the Models nav entry", "//a[contains(@href, '/plugin/predone-models')]", "nav")
    check("Models" in entry.text, f"the UI's navigation has the Models entry ({entry.text!r})")
    driver.switch_to.frame(frame)
    find(driver, "the chart inside the UI", "//*[local-name()='svg' and @class='chart']", "nav")
    driver.switch_to.default_content()
    time.sleep(1)
    shoot(driver, "models-in-ui.png")

    driver.get(f"{base_url}/predone-models/")
    find(driver, "the model's chart", "//*[local-name()='svg' and @class='chart']", "page")
    section = model_section(driver.page_source)
    outcomes = POINT.findall(section)
    expected = [("trained", "trained"), ("retrained", "switched"), ("retrained", "rejected")]
    check(outcomes == expected, f"the chart has one point per (re)training, by outcome: {outcomes}")
    served = re.search(r'data-served-version="(\d+)"', section)
    check(served is not None and served[1] == "2", "the page says version 2 is served (the switched retraining)")
    check(f"by {rejected_by}" in section, f"the rejected retraining names who rejected it ({rejected_by})")
    rows = f'class="num">{lifecycle["rows_scored_each"][1]:,}'
    check(rows in section, f"the table shows the rows scored after the switch ({lifecycle['rows_scored_each'][1]})")
    metrics = lifecycle["metrics_after"]
    check(f"{metrics['auc']:.4g}" in section, f"the table shows the retrained model's AUC ({metrics['auc']:.4g})")
    check("predone-demo-secret-key" not in driver.page_source, "no secret on the page")
    driver.set_window_size(1200, 1000)  # the guide's screenshot (docs/_static/models-page.png)
    time.sleep(0.5)
    shoot(driver, "models-page.png")
    driver.set_window_size(420, 1400)
    time.sleep(0.5)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    check(width <= 440, f"readable in a narrow window: nothing scrolls sideways at 420 px (width {width})")
    shoot(driver, "models-page-narrow.png")
    driver.set_window_size(1400, 2000)


def follow_extra_link(driver: Any, base_url: str, run_id: str) -> None:
    """From the retrain task's Details tab in the UI, its "Model history" link to the model's page."""
    driver.get(f"{base_url}/dags/predone_lifecycle/runs/{quote(run_id, safe='')}/tasks/retrain/details")
    link = find(driver, "the task's Model history link", "//a[normalize-space(.)='Model history']", "task")
    href = link.get_attribute("href")
    check("/predone-models/task?" in href, f"the retrain task links to the Models page ({href})")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    time.sleep(0.5)
    shoot(driver, "task-extra-link.png")
    before = set(driver.window_handles)
    link.click()  # Airflow 3.3 opens a same-origin link in this tab, 3.1 in a new one
    time.sleep(1)
    opened = [handle for handle in driver.window_handles if handle not in before]
    if opened:
        driver.switch_to.window(opened[0])
    find(driver, "the model's page", "//section[@class='model']", "link")
    model = parse_qs(urlsplit(driver.current_url).query).get("model")
    check(model == [MODEL_URI], f"the link leads to the page of {MODEL_URI} ({driver.current_url})")
    check(driver.page_source.count('<section class="model"') == 1, "the linked page shows that one model")


def check_refused_without_credentials(base_url: str) -> None:
    import requests

    for path in ("/predone-models/", "/predone-models/task?dag_id=predone_lifecycle&run_id=x&task_id=train"):
        status = requests.get(f"{base_url}{path}", timeout=30, allow_redirects=False).status_code
        check(status in (401, 403), f"GET {path} without credentials is refused ({status})")


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
        e2e_approval.until("the api-server", lambda: e2e_approval._healthy(base_url), timeout=180, interval=0.5)
        for name in ("scheduler", "dag-processor", "triggerer"):
            stack.enter_context(airflow_process(name, env))
        check_refused_without_credentials(base_url)
        api = Api(base_url)

        run_id = api.trigger("predone_lifecycle", {"output_dir": str(WORK / "lifecycle")})
        check(api.finished("predone_lifecycle", run_id) == "success", "predone_lifecycle trained, retrained, switched")
        summary = api.call(
            "GET", f"/dags/predone_lifecycle/dagRuns/{run_id}/taskInstances/summary/xcomEntries/return_value"
        )
        lifecycle = summary["value"] if isinstance(summary["value"], dict) else json.loads(summary["value"])
        check(lifecycle.get("switched") is True, "the lifecycle's gate accepted the retrained model")

        dag_id, task_id = e2e_approval.DAG_ID, e2e_approval.TASK_ID
        review_run = api.trigger(dag_id, {"model_id": 1})
        e2e_approval.until(f"{task_id} to wait for a person", partial(api.awaits_person, dag_id, review_run, task_id))
        # A person answers after seconds, not milliseconds: an answer within about a second of the
        # task parking itself races the executor's report of its exit (Airflow marks the task
        # failed, apache/airflow#71580; docs/deferrable.md). Wait as a reader would.
        time.sleep(REVIEW_SECONDS)
        api.reject(dag_id, review_run, task_id)
        check(api.finished(dag_id, review_run) == "success", "the review was answered: Reject")
        check(api.task_state(dag_id, review_run, task_id) == "skipped", "the rejected retraining switched nothing")

        driver = e2e.start_browser()
        stack.callback(driver.quit)
        sign_in(driver, base_url)
        check_page(driver, base_url, lifecycle, USER)
        follow_extra_link(driver, base_url, run_id)
    say(f"PASSED in {time.monotonic() - started:.0f} s; screenshots in {WORK.relative_to(ROOT)}/")


def main() -> int:
    try:
        run()
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
