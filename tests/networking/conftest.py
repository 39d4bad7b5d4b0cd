"""Fixtures of the networking tests: a private CA, the emulator over TLS (and mTLS), a forward proxy.

Everything is a real server process on 127.0.0.1; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import EMULATOR_OPTIONS
from network_support import PROXY_PASSWORD, PROXY_USER, Pki, ProxyProcess, make_pki

from airflow_provider_predone.emulator import EmulatorProcess

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA bundle from the machine leaks into a test; no API key cached from another."""
    from airflow_provider_predone.hooks.predone import API_KEYS

    for name in PROXY_VARIABLES + tuple(v.lower() for v in PROXY_VARIABLES) + ("SSL_CERT_FILE",):
        monkeypatch.delenv(name, raising=False)
    API_KEYS.clear()


def _emulator(pki: Pki, *, mutual: bool) -> EmulatorProcess:
    options = {"tls_client_ca": str(pki.ca)} if mutual else {}
    return EmulatorProcess(
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        verbose=True,  # logs each request's peer port: the proof that it came through the proxy
        admin_ssl_context=pki.client_context(client_cert=mutual),
        **EMULATOR_OPTIONS,
        **options,
    )


@pytest.fixture
def tls_emulator(pki: Pki) -> Iterator[EmulatorProcess]:
    """A fresh emulator serving HTTPS with a certificate of the private CA (so its log is this test's)."""
    with _emulator(pki, mutual=False) as emulator:
        yield emulator


@pytest.fixture
def mtls_emulator(pki: Pki) -> Iterator[EmulatorProcess]:
    """A fresh emulator that also requires a client certificate of the private CA."""
    with _emulator(pki, mutual=True) as emulator:
        yield emulator


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyProcess]:
    with ProxyProcess(tmp_path / "proxy.log") as process:
        yield process


@pytest.fixture
def auth_proxy(tmp_path: Path) -> Iterator[ProxyProcess]:
    with ProxyProcess(tmp_path / "auth-proxy.log", auth=f"{PROXY_USER}:{PROXY_PASSWORD}") as process:
        yield process
