"""``EmulatorProcess``: the emulator as a real server process, for tests and benchmarks."""

from __future__ import annotations

import json
import selectors
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from types import TracebackType
from typing import IO, Any

LISTENING_PREFIX = "predone-emulator listening on "


class EmulatorProcess:
    """Starts ``python -m airflow_provider_predone.emulator --port 0 ...`` and stops it on exit.

    ``EmulatorProcess(job_seconds=1.0, fault_rate=0.2)`` passes ``--job-seconds 1.0 --fault-rate 0.2``;
    ``verbose=True`` passes ``--verbose``. The server's stderr goes to a temporary file, quoted
    when the server fails to start. :meth:`secrets`, :meth:`reset`, :meth:`configure` and
    :meth:`expire_keys` (and faults, holds) need ``test_controls=True``; :meth:`state` does not.

    :param startup_timeout: seconds to wait for the listening line.
    :param stop_timeout: seconds to wait after SIGTERM before killing the process.
    :param admin_ssl_context: how admin calls reach a server started with ``tls_cert`` (trusting
        its CA, and with a client certificate when it was started with ``tls_client_ca``).
    :param options: :class:`~airflow_provider_predone.emulator.EmulatorConfig` fields.
    """

    def __init__(
        self,
        *,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        admin_ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        self.options = options
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._url: str | None = None
        # Admin calls go straight to the server, whatever proxy the environment names.
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if admin_ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=admin_ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    def command(self) -> list[str]:
        arguments = [sys.executable, "-m", "airflow_provider_predone.emulator", "--port", "0"]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is None or value is False:
                continue
            arguments += [flag] if value is True else [flag, str(value)]
        return arguments

    def start(self) -> EmulatorProcess:
        # Kept open for the life of the process (closed by stop()); a pipe could fill up and block it.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, text=True
        )
        try:
            self._url = self._read_listening_line()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_listening_line(self) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise RuntimeError(self._failure(f"no listening line within {self.startup_timeout} s"))
        line = stdout.readline()
        if not line.startswith(LISTENING_PREFIX):
            raise RuntimeError(self._failure(f"unexpected first line {line!r}"))
        return line.removeprefix(LISTENING_PREFIX).strip()

    def _failure(self, what: str) -> str:
        assert self._process is not None
        code = self._process.poll()
        return f"predone-emulator did not start ({what}; exit code {code}); stderr:\n{self.stderr()}"

    def stderr(self) -> str:
        """What the server wrote on stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; answers the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._process = None
        return process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` when started with ``tls_cert``)."""
        if self._url is None:
            raise RuntimeError("the emulator process is not running")
        return self._url

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the emulator process is not running")
        return self._process.pid

    def _admin(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        if name != "state" and not self.options.get("test_controls"):
            raise RuntimeError(f"/_emulator/{name} is a test-only control: start EmulatorProcess(test_controls=True)")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - always our own http(s):// URL
            f"{self.url}/_emulator/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=30) as response:
            return json.load(response)

    def state(self) -> dict[str, Any]:
        """Counters (``GET /_emulator/state``)."""
        result: dict[str, Any] = self._admin("GET", "state")
        return result

    def secrets(self) -> dict[str, Any]:
        """Every secret handed out (``GET /_emulator/secrets``)."""
        result: dict[str, Any] = self._admin("GET", "secrets")
        return result

    def reset(self) -> None:
        """Forget every model, job, key and counter."""
        self._admin("POST", "reset", {})

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings (``job_seconds``, ``fault_rate``, ...); answers the new config."""
        result: dict[str, Any] = self._admin("POST", "config", settings)
        return result

    def expire_keys(self) -> None:
        """Every API key issued so far expires now."""
        self._admin("POST", "expire-keys", {})

    def finish_jobs(self) -> int:
        """Every training and retrain job still running ends now; answers how many."""
        result: dict[str, int] = self._admin("POST", "finish-jobs", {})
        return result["finished"]

    def aitems_throttle(self, code: str = "410", count: int = 1) -> None:
        """The next ``count`` AiTEMS calls answer HTTP 429 with ``errorCode`` ``code`` (400, 410 or 420)."""
        self._admin("POST", "aitems/throttle", {"code": code, "count": count})

    def aitems_clock(self, skew_seconds: float) -> None:
        """Skew the AiTEMS gateway's clock by ``skew_seconds`` (beyond 300 s, signed requests are refused)."""
        self._admin("POST", "aitems/clock", {"skew_seconds": skew_seconds})
