"""Helpers of the networking tests: a throwaway PKI, the forward proxy process, log checks."""

from __future__ import annotations

import json
import re
import selectors
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from airflow_provider_predone.emulator import EmulatorProcess

HERE = Path(__file__).resolve().parent
PROXY_SCRIPT = HERE / "forward_proxy.py"
LISTENING = "proxy listening on "
PROXY_USER, PROXY_PASSWORD = "airflow", "s3cret-proxy-pass"
_PEER_LINE = re.compile(r"peer [\d.]+:(\d+) (\w+) (\S+)")


@dataclass(frozen=True)
class Pki:
    """Files of a private CA: the server's certificate for 127.0.0.1 and a client certificate."""

    ca: Path  #: the CA certificate (what ``verify`` points at)
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_pem: Path  #: client certificate and key in one file
    other_ca: Path  #: a CA that signed nothing here

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if client_cert:
            context.load_cert_chain(str(self.client_pem))
        return context


def make_pki(folder: Path) -> Pki:
    ca = trustme.CA(organization_name="predone networking tests")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("airflow-worker@example.test")
    files = {
        "ca": ca.cert_pem,
        "server_cert": server.cert_chain_pems[0],
        "server_key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
        "other_ca": trustme.CA().cert_pem,
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = folder / f"{name}.pem"
        blob.write_to_path(str(paths[name]))
    client_pem = folder / "client_pem.pem"
    client_pem.write_bytes(paths["client_cert"].read_bytes() + paths["client_key"].read_bytes())
    return Pki(client_pem=client_pem, **paths)


class ProxyProcess:
    """``forward_proxy.py`` as a real process; :meth:`entries` reads its log."""

    def __init__(self, log: Path, auth: str | None = None) -> None:
        self.log = log
        self.auth = auth
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ProxyProcess:
        command = [sys.executable, str(PROXY_SCRIPT), "--port", "0", "--log", str(self.log)]
        if self.auth:
            command += ["--auth", self.auth]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=30):
                self.__exit__(None, None, None)
                raise RuntimeError("the proxy did not start within 30 s")
        line = self._process.stdout.readline()
        if not line.startswith(LISTENING):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the proxy did not start: {line!r}")
        self.url = line.removeprefix(LISTENING).strip()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def tunnels(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["event"] == "connect" and e["status"] == 200]

    def upstream_ports(self) -> set[int]:
        return {e["upstream_port"] for e in self.tunnels()}

    def url_with(self, user: str, password: str) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@")


def emulator_requests(emulator: EmulatorProcess) -> list[tuple[int, str, str]]:
    """``(peer port, method, path)`` of every vendor and storage request the emulator served
    (``--verbose``); admin calls (``/_emulator/``, made by the test itself) are left out."""
    found = []
    for port, method, path in _PEER_LINE.findall(emulator.stderr()):
        if not path.startswith("/_emulator/"):
            found.append((int(port), method, path))
    return found


def wait_until(probe: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)
