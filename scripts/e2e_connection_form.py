"""
End-to-end check of the provider's connection forms in a real browser (``make e2e``).

Starts ``airflow api-server`` on 127.0.0.1 with this provider installed (Airflow home under
``.demo/e2e/``, simple auth manager with everybody an admin), opens the UI's "Add Connection"
form in headless Chromium, selects "Prediction One" and then "AiTEMS (NAVER Cloud)" and checks
that the fields declared in ``get_provider_info()`` are shown as intended: the service dropdown
with both values, secret keys as password boxes, relabelled fields, hidden fields. Screenshots
go to ``.demo/e2e/*.png``. It then creates one connection of each type through the form and
reads them back through the REST API (``/api/v2/connections/{id}``) with a token.

Debian's ``chromium`` and ``chromium-driver`` are installed with apt-get when missing. The
browser is driven by Selenium with the Debian chromedriver given explicitly, so Selenium
Manager never downloads anything. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo" / "e2e"
AIRFLOW_HOME = WORK / "airflow"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,2000",
]
ADD_BUTTON = "//button[contains(., 'Add Connection')]"
SECTION_BUTTONS = "//*[@role='dialog']//button[@data-part='item-trigger']"
SERVER_START_SECONDS = 180
UI_WAIT_SECONDS = 30

PREDONE_TYPE = "Prediction One"
AITEMS_TYPE = "AiTEMS (NAVER Cloud)"
HTTP_EXTRA_LABELS = {
    "timeout": ("Request timeout (s)", "30"),
    "transfer_timeout": ("Transfer timeout (s)", "300"),
    "max_retries": ("Max retries", "5"),
    "retry_wait_seconds": ("Retry base wait (s)", "1"),
    "retry_max_wait_seconds": ("Retry max wait (s)", "30"),
}

T = TypeVar("T")


class CheckFailed(Exception):
    """A check of the form (or of the set-up it needs) did not hold."""


def say(message: str) -> None:
    print(f"e2e: {message}", flush=True)


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
    say(f"  ok  {message}")


# --- set-up ------------------------------------------------------------------------------------


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver when missing (root, or sudo without a password)."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    say("installing Debian's chromium and chromium-driver with apt-get")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise CheckFailed("chromium is missing and this is not root: apt-get install chromium chromium-driver")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"]
    for command in (["apt-get", "update", "-qq"], install):
        done = subprocess.run([*prefix, *command], env=env, capture_output=True, text=True)
        if done.returncode:
            raise CheckFailed(f"{' '.join(command)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        raise CheckFailed(f"apt-get installed chromium, but {CHROMIUM} or {CHROMEDRIVER} is missing")
    say("chromium installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_env() -> dict[str, str]:
    from cryptography.fernet import Fernet

    dags = AIRFLOW_HOME / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            # Every visitor is an admin: the UI needs no login and GET /auth/token hands out a token.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(24).hex(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        }
    )
    return env


def stop_group(process: subprocess.Popen[Any], grace: float) -> None:
    """Stop a process started with ``start_new_session``, and all it started: TERM, then KILL."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def http_json(url: str, token: str | None = None, timeout: float = 10) -> Any:
    import requests

    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    answer = requests.get(url, headers=headers, timeout=timeout)
    answer.raise_for_status()
    return answer.json()


@contextmanager
def api_server(env: dict[str, str]) -> Iterator[str]:
    """``airflow api-server`` on 127.0.0.1 and a free port; yields its base URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = WORK / "api-server.log"
    say(f"starting airflow api-server on {url} (log: {log_path.relative_to(ROOT)})")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                raise CheckFailed(f"api-server exited with {process.returncode}; see {log_path}")
            try:
                health = http_json(f"{url}/api/v2/monitor/health", timeout=2)
                if health.get("metadatabase", {}).get("status") == "healthy":
                    break
            except (OSError, ValueError):  # requests' errors derive from OSError
                pass
            if time.monotonic() > deadline:
                raise CheckFailed(f"api-server not healthy after {SERVER_START_SECONDS} s; see {log_path}")
            time.sleep(0.5)
        say(f"api-server healthy after {SERVER_START_SECONDS - (deadline - time.monotonic()):.1f} s")
        yield url
    finally:
        if process.poll() is None:
            say("stopping the api-server")
            stop_group(process, grace=20)


# --- the browser -------------------------------------------------------------------------------


class Form:
    """The "Add Connection" dialog of the Airflow UI, driven through Selenium."""

    def __init__(self, driver: Any, base_url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.wait = WebDriverWait(driver, UI_WAIT_SECONDS)

    def until(self, what: str, condition: Callable[[Any], T | None]) -> T:
        from selenium.common.exceptions import TimeoutException

        try:
            value: T | None = self.wait.until(condition)
        except TimeoutException:
            raise CheckFailed(f"timed out after {UI_WAIT_SECONDS} s waiting for {what}") from None
        assert value is not None  # WebDriverWait.until returns only once the condition is truthy
        return value

    def xpath(self, path: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.XPATH, path))

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def dialog(self) -> Any:
        return self.until("the Add Connection dialog", lambda d: (self.css("[role=dialog]") or [None])[0])

    def open(self) -> None:
        self.driver.get(f"{self.base_url}/connections")
        button = self.until(
            "the 'Add Connection' button",
            lambda d: next((b for b in self.xpath(ADD_BUTTON) if b.is_displayed()), None),
        )
        button.click()
        self.until("the dialog title", lambda d: self.xpath("//*[@role='dialog']//h2[contains(., 'Add Connection')]"))

    def set_text(self, element: Any, value: str) -> None:
        from selenium.webdriver.common.keys import Keys

        element.click()
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        element.send_keys(value)

    def choose(self, combobox: Any, option_text: str) -> None:
        """Pick ``option_text`` in a react-select combobox."""
        combobox.click()
        combobox.send_keys(option_text)
        option = self.until(
            f"option {option_text!r}",
            lambda d: next((o for o in self.css("[role=option]") if o.text.strip() == option_text), None),
        )
        option.click()

    def options_of(self, combobox: Any, keep: str) -> list[str]:
        """The options a react-select combobox offers; closes it again by picking ``keep``."""
        combobox.click()
        self.until("the dropdown's options", lambda d: self.css("[role=option]"))
        options = self.css("[role=option]")
        texts = [o.text.strip() for o in options]
        next((o for o in options if o.text.strip() == keep), options[0]).click()
        return texts

    def select_type(self, type_name: str) -> None:
        combobox = self.until(
            "the Connection Type dropdown",
            lambda d: (self.css("[role=dialog] input[role=combobox]") or [None])[0],
        )
        self.choose(combobox, type_name)
        self.until(
            f"the form of {type_name!r}",
            lambda d: self.xpath(f"{SECTION_BUTTONS}[contains(., 'Standard Fields')]"),
        )

    def section(self, title: str) -> None:
        """Open the accordion section ``title`` (one is open at a time)."""
        trigger = self.until(
            f"the section {title!r}",
            lambda d: next(
                (b for b in self.xpath(SECTION_BUTTONS) if b.text.strip() == title),
                None,
            ),
        )
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        self.until(f"the section {title!r} to open", lambda d: trigger.get_attribute("aria-expanded") == "true")
        time.sleep(0.5)  # the opening animation

    def visible_labels(self) -> list[str]:
        labels = self.xpath("//*[@role='dialog']//label")
        return [" ".join(label.text.replace("*", "").split()) for label in labels if label.is_displayed()]

    def field(self, label: str) -> Any:
        """The input of the (visible) field labelled ``label``."""
        for element in self.xpath("//*[@role='dialog']//label"):
            if " ".join(element.text.replace("*", "").split()) == label and element.is_displayed():
                target = element.get_attribute("for")
                found = self.css(f"[role=dialog] [id='{target}']") if target else []
                if found:
                    return found[0]
                root = element.find_elements("xpath", "./ancestor::*[@data-part='root'][1]//input")
                if root:
                    return root[0]
        raise CheckFailed(f"no visible field labelled {label!r}; visible labels: {self.visible_labels()}")

    def named(self, name: str) -> Any:
        found = self.css(f"[role=dialog] [name='{name}']")
        return found[0] if found else None

    def shown(self, name: str) -> bool:
        element = self.named(name)
        return element is not None and element.is_displayed()

    def screenshot(self, name: str) -> Path:
        """The whole window as ``name``; with the dialog open also the dialog alone (``*-dialog.png``)."""
        path = WORK / name
        self.driver.save_screenshot(str(path))
        say(f"  screenshot {path.relative_to(ROOT)}")
        dialogs = self.css("[role=dialog]")
        if dialogs:
            dialogs[0].screenshot(str(path.with_name(f"{path.stem}-dialog.png")))
        return path

    def save(self) -> None:
        button = self.until(
            "an enabled Save button",
            lambda d: next(
                (b for b in self.xpath("//*[@role='dialog']//button[contains(., 'Save')]") if b.is_enabled()),
                None,
            ),
        )
        button.click()
        self.until("the dialog to close", lambda d: not self.css("[role=dialog]"))


def start_browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = WORK / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    # The driver path is given, so Selenium Manager is never consulted (it would download).
    service = Service(executable_path=CHROMEDRIVER, log_output=str(WORK / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    say(f"headless {driver.capabilities.get('browserVersion', 'chromium')} started")
    return driver


# --- the checks --------------------------------------------------------------------------------


def check_hidden(form: Form, names: list[str], type_name: str) -> None:
    for name in names:
        check(not form.shown(name), f"{type_name}: the {name!r} field is hidden")


def check_predone(form: Form) -> None:
    say(f"connection type {PREDONE_TYPE!r}")
    form.select_type(PREDONE_TYPE)
    form.section("Standard Fields")
    labels = form.visible_labels()
    check("Host (optional override)" in labels, "predone: host relabelled 'Host (optional override)'")
    check("Secret key" in labels, "predone: password relabelled 'Secret key'")
    check(not {"Login", "Schema", "Port", "Password", "Host"} & set(labels), f"predone: no stock labels in {labels}")
    check_hidden(form, ["login", "schema", "port"], "predone")
    password = form.field("Secret key")
    check(password.get_attribute("type") == "password", "predone: the secret key is a password box")
    host = form.field("Host (optional override)")
    check("emulator" in (host.get_attribute("placeholder") or ""), "predone: the host placeholder names the emulator")
    form.screenshot("predone_standard_fields.png")

    form.section("Extra Fields")
    labels = form.visible_labels()
    expected = ["Service", "Train API key", "Retrain API key", *(label for label, _ in HTTP_EXTRA_LABELS.values())]
    check(all(label in labels for label in expected), f"predone: extra fields {expected} are shown")
    service = form.field("Service")
    check(service.get_attribute("role") == "combobox", "predone: service is a dropdown")
    current = form.named("element_service")
    check(
        current is not None and current.get_attribute("value") == "prediction_one",
        "predone: service defaults to prediction_one",
    )
    options = form.options_of(service, keep="prediction_one")
    check(
        options == ["prediction_one", "easy_predictive_analytics"],
        f"predone: the service dropdown offers prediction_one and easy_predictive_analytics (saw {options})",
    )
    for label in ("Train API key", "Retrain API key"):
        check(form.field(label).get_attribute("type") == "password", f"predone: {label!r} is a password box")
    for label, default in HTTP_EXTRA_LABELS.values():
        value = form.field(label).get_attribute("value")
        check(value == default, f"predone: {label!r} defaults to {default} (saw {value!r})")
    form.screenshot("predone_extra_fields.png")


def check_aitems(form: Form) -> None:
    say(f"connection type {AITEMS_TYPE!r}")
    form.select_type(AITEMS_TYPE)
    form.section("Standard Fields")
    labels = form.visible_labels()
    for label in ("Access key ID", "Secret key", "Host (optional override)"):
        check(label in labels, f"aitems: field {label!r} is shown")
    check(not {"Login", "Schema", "Port", "Password", "Host"} & set(labels), f"aitems: no stock labels in {labels}")
    check_hidden(form, ["schema", "port"], "aitems")
    check(form.field("Access key ID").get_attribute("type") != "password", "aitems: the access key ID is plain text")
    check(form.field("Secret key").get_attribute("type") == "password", "aitems: the secret key is a password box")
    form.screenshot("aitems_standard_fields.png")
    form.section("Extra Fields")
    labels = form.visible_labels()
    check("Service" not in labels, "aitems: no Prediction One service dropdown")
    check(all(label in labels for label, _ in HTTP_EXTRA_LABELS.values()), "aitems: timeouts and retry settings shown")
    form.screenshot("aitems_extra_fields.png")


def create_aitems(form: Form) -> None:
    """Fill the (already open, AiTEMS) form and save it."""
    say("creating connection 'e2e_aitems' through the form")
    form.set_text(form.named("connection_id"), "e2e_aitems")
    form.section("Standard Fields")
    form.set_text(form.field("Host (optional override)"), "http://127.0.0.1:8765")
    form.set_text(form.field("Access key ID"), "e2e-access-key-id")
    form.set_text(form.field("Secret key"), "e2e-aitems-secret")
    form.section("Extra Fields")
    form.set_text(form.field("Max retries"), "3")
    form.save()


def create_predone(form: Form) -> None:
    say("creating connection 'e2e_predone' through the form")
    form.open()
    form.set_text(form.named("connection_id"), "e2e_predone")
    form.select_type(PREDONE_TYPE)
    form.section("Standard Fields")
    form.set_text(form.field("Host (optional override)"), "http://127.0.0.1:8765")
    form.set_text(form.field("Secret key"), "e2e-predone-secret-key")
    form.section("Extra Fields")
    service = form.field("Service")
    form.choose(service, "easy_predictive_analytics")
    form.set_text(form.field("Train API key"), "e2e-train-api-key")
    form.set_text(form.field("Request timeout (s)"), "12")
    form.screenshot("predone_filled.png")
    form.save()


def read_back(base_url: str) -> None:
    token = http_json(f"{base_url}/auth/token")["access_token"]
    check(bool(token), "REST API: got a token from /auth/token")

    conn = http_json(f"{base_url}/api/v2/connections/e2e_predone", token)
    say(f"  e2e_predone: {json.dumps(conn, sort_keys=True)}")
    check(conn.get("conn_type") == "predone", "REST API: e2e_predone has conn_type 'predone'")
    check(conn.get("host") == "http://127.0.0.1:8765", "REST API: e2e_predone has the host typed in the form")
    check(conn.get("password"), "REST API: e2e_predone has a secret key (password)")
    check(not conn.get("login") and not conn.get("schema") and not conn.get("port"), "REST API: no login/schema/port")
    extra = json.loads(conn.get("extra") or "{}")
    check(extra.get("service") == "easy_predictive_analytics", "REST API: extra service = easy_predictive_analytics")
    check(str(extra.get("timeout")) in ("12", "12.0"), f"REST API: extra timeout = 12 (saw {extra.get('timeout')!r})")
    check("train_api_key" in extra, "REST API: extra has the train API key")
    check(extra.get("train_api_key") != "e2e-train-api-key", "REST API: the train API key is masked in the answer")

    conn = http_json(f"{base_url}/api/v2/connections/e2e_aitems", token)
    say(f"  e2e_aitems: {json.dumps(conn, sort_keys=True)}")
    check(conn.get("conn_type") == "aitems", "REST API: e2e_aitems has conn_type 'aitems'")
    check(conn.get("login") == "e2e-access-key-id", "REST API: e2e_aitems login is the access key ID")
    check(conn.get("password") != "e2e-aitems-secret", "REST API: the AiTEMS secret key is not shown in clear")
    extra = json.loads(conn.get("extra") or "{}")
    check(str(extra.get("max_retries")) in ("3", "3.0"), f"REST API: extra max_retries = 3 (saw {extra!r})")


HOOK_PROBE = """
import json
from airflow.models.connection import Connection
from airflow.utils.session import create_session
from airflow_provider_predone.hooks.aitems import AitemsConnection
from airflow_provider_predone.hooks.predone import PredictionOneConnection

with create_session() as session:
    stored = {c.conn_id: c for c in session.query(Connection).filter(Connection.conn_id.like("e2e_%"))}
    p = PredictionOneConnection.from_connection(stored["e2e_predone"])
    a = AitemsConnection.from_connection(stored["e2e_aitems"])
print(json.dumps({
    "predone_base_url": p.settings.base_url, "service": p.service, "timeout": p.settings.timeout,
    "secret_key_ok": p.secret_key == "e2e-predone-secret-key", "train_key_ok": p.train_api_key == "e2e-train-api-key",
    "aitems_base_url": a.settings.base_url, "access_key": a.access_key, "max_retries": a.settings.max_retries,
    "aitems_secret_ok": a.secret_key == "e2e-aitems-secret",
}))
"""


def read_with_hooks(env: dict[str, str]) -> None:
    """
    The hooks' own parsers read what the form stored (the REST API masks secrets; this sees them).

    Read from the metadata database directly: outside a task, the Task SDK looks connections up
    only in environment variables and secrets backends.
    """
    probe = subprocess.run([sys.executable, "-c", HOOK_PROBE], env=env, capture_output=True, text=True, timeout=120)
    if probe.returncode:
        raise CheckFailed(f"the hooks could not read the saved connections:\n{probe.stderr[-3000:]}")
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    say(f"  hooks read: {seen}")
    check(seen["service"] == "easy_predictive_analytics", "hook: e2e_predone service is easy_predictive_analytics")
    check(seen["predone_base_url"] == "http://127.0.0.1:8765/v1/external", "hook: base URL = host + /v1/external")
    check(seen["timeout"] == 12, "hook: request timeout 12 s")
    check(seen["secret_key_ok"], "hook: the secret key typed in the form")
    check(seen["train_key_ok"], "hook: the train API key typed in the form")
    check(seen["aitems_base_url"] == "http://127.0.0.1:8765/api/v1", "hook: AiTEMS base URL = host + /api/v1")
    check(seen["access_key"] == "e2e-access-key-id", "hook: the AiTEMS access key ID")
    check(seen["aitems_secret_ok"], "hook: the AiTEMS secret key typed in the form")
    check(seen["max_retries"] == 3, "hook: AiTEMS max retries 3")


def run() -> None:
    started = time.monotonic()
    ensure_chromium()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = airflow_env()
    say(f"airflow db migrate (AIRFLOW_HOME={AIRFLOW_HOME.relative_to(ROOT)})")
    migrate = subprocess.run([airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True)
    (WORK / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
    if migrate.returncode:
        raise CheckFailed(f"airflow db migrate failed; see {WORK / 'db-migrate.log'}")
    with api_server(env) as base_url:
        meta = {m["connection_type"]: m for m in http_json(f"{base_url}/ui/connections/hook_meta")}
        check({"predone", "aitems"} <= meta.keys(), "hook_meta lists the predone and aitems connection types")
        driver = start_browser()
        form = Form(driver, base_url)
        try:
            form.open()
            check_predone(form)
            check_aitems(form)
            create_aitems(form)
            create_predone(form)
            driver.get(f"{base_url}/connections")
            form.until("the new connections in the list", lambda d: "e2e_predone" in d.page_source)
            time.sleep(1)
            form.screenshot("connections_list.png")
        except Exception:
            try:
                form.screenshot("failure.png")
            except Exception as exc:  # the browser itself may be gone
                say(f"no failure screenshot: {exc}")
            raise
        finally:
            driver.quit()
        read_back(base_url)
    read_with_hooks(env)
    say(f"PASSED in {time.monotonic() - started:.0f} s; screenshots in {WORK.relative_to(ROOT)}/")


def main() -> int:
    try:
        run()
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    except Exception as exc:
        say(f"FAILED with {type(exc).__name__}: {exc}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
