"""
Enterprise networking against real servers on 127.0.0.1: the emulator over TLS with a private
CA (and mutual TLS), a forward proxy process (CONNECT tunnels, optionally with basic auth).

The proof that traffic went through the proxy is the two servers' own logs: the emulator logs
each request's peer port (``--verbose``), the proxy logs the local port of each tunnel's
outbound socket, and every request the emulator served must have come from one of those.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, aitems_connection, predone_connection, run_dag
from network_support import PROXY_PASSWORD, PROXY_USER, Pki, ProxyProcess, emulator_requests

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError, NetworkSettingsError
from airflow_provider_predone.hooks.connection import HttpSettings, Networking

FAST = {"retry_wait_seconds": 0.05, "retry_max_wait_seconds": 0.5}


def connect(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorProcess, **extra: Any) -> None:
    """``predone_default`` and ``aitems_default`` point at ``emulator`` with these extras."""
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator.url, **FAST, **extra))
    monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(emulator.url, **FAST, **extra))


def assert_all_through(proxy: ProxyProcess, emulator: EmulatorProcess) -> list[tuple[int, str, str]]:
    """Every request the emulator served came out of one of the proxy's tunnels to it."""
    served = emulator_requests(emulator)
    assert served, "the emulator served nothing"
    tunnels = proxy.tunnels()
    assert {t["target"] for t in tunnels} == {emulator.url.removeprefix("https://")}
    outside = [r for r in served if r[0] not in proxy.upstream_ports()]
    assert not outside, f"requests that did not come through the proxy: {outside[:5]}"
    return served


def counts(served: list[tuple[int, str, str]], prefix: str, method: str | None = None) -> int:
    return sum(1 for _, m, path in served if path.startswith(prefix) and method in (None, m))


def train_trigger(timeout: float = 3600.0, external_process_id: str = "unknown-process") -> Any:
    from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

    return PredictionOneTrainTrigger(
        external_process_id=external_process_id, conn_id="predone_default", poll_interval=30, timeout=timeout
    )


def first_event(trigger: Any, within: float = 30.0) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        event = await asyncio.wait_for(trigger.run().__anext__(), within)
        return dict(event.payload)

    return asyncio.run(run())


# --- the extras, read once ------------------------------------------------------------------


def test_extras_follow_the_http_connection(pki: Pki) -> None:
    one = Networking.from_extras("c", {"proxies": "http://u:p%40ss@proxy.example:3128"})
    assert one.proxies == (
        ("http", "http://u:p%40ss@proxy.example:3128"),
        ("https", "http://u:p%40ss@proxy.example:3128"),
    )
    by_scheme = Networking.from_extras(
        "c",
        {
            "proxies": {"https": "http://proxy.example:3128"},
            "verify": str(pki.ca),
            "cert": [str(pki.client_cert), str(pki.client_key)],
        },
    )
    assert by_scheme.proxy_for("https://api.example/x") == "http://proxy.example:3128"
    assert by_scheme.proxy_for("http://api.example/x") is None
    assert (by_scheme.verify, by_scheme.ca_bundle) == (True, str(pki.ca))
    assert by_scheme.cert == (str(pki.client_cert), str(pki.client_key))
    # The connection form sends text: JSON objects and lists, "true"/"false".
    form = Networking.from_extras(
        "c",
        {
            "proxies": '{"https": "http://p:1"}',
            "verify": "False",
            "cert": json.dumps([str(pki.client_cert), str(pki.client_key)]),
            "trust_env": "false",
        },
    )
    assert (form.proxies, form.verify, form.trust_env) == ((("https", "http://p:1"),), False, False)
    assert form.cert == (str(pki.client_cert), str(pki.client_key))


def test_trust_env_reads_the_ca_bundle_variables_as_requests_does(pki: Pki) -> None:
    environ = {"REQUESTS_CA_BUNDLE": str(pki.ca), "SSL_CERT_FILE": "/elsewhere.pem"}
    assert Networking.from_extras("c", {}, environ).ca_bundle == str(pki.ca)
    assert Networking.from_extras("c", {}, {"SSL_CERT_FILE": str(pki.ca)}).ca_bundle == str(pki.ca)
    assert Networking.from_extras("c", {"trust_env": False}, environ).ca_bundle is None
    assert Networking.from_extras("c", {"verify": str(pki.other_ca)}, environ).ca_bundle == str(pki.other_ca)


@pytest.mark.parametrize(
    ("extras", "named"),
    [
        ({"proxies": "ftp://proxy:21"}, "'proxies'"),
        ({"proxies": {"socks": "http://proxy:1"}}, "'proxies'"),
        ({"proxies": "http://:3128"}, "'proxies'"),
        ({"verify": "/no/such/ca.pem"}, "'verify'"),
        ({"verify": 3}, "'verify'"),
        ({"cert": ["only-one"]}, "'cert'"),
        ({"cert": "/no/such/client.pem"}, "'cert'"),
        ({"trust_env": "sometimes"}, "'trust_env'"),
    ],
)
def test_a_bad_extra_is_an_error_naming_it(extras: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        HttpSettings.from_extras("https://api.example", "conn", extras)


def test_the_proxy_password_stays_out_of_repr_errors_and_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    secret_url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9"
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection("https://127.0.0.1:9", proxies=secret_url))
    info = PredictionOneHook().connection_info
    assert PROXY_PASSWORD not in repr(info)
    assert "http://127.0.0.1:9" in repr(info.settings.network)
    try:  # the hook registered the password and the URL with Airflow's secrets masker
        from airflow.sdk.log import redact
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import redact
    assert PROXY_PASSWORD not in str(redact(f"proxy is {secret_url}; password {PROXY_PASSWORD}"))
    # A malformed proxy URL is refused without quoting it: it may hold the password.
    monkeypatch.setenv(
        "AIRFLOW_CONN_PREDONE_DEFAULT",
        predone_connection("https://x", proxies=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:port"),
    )
    with pytest.raises(InvalidInputError, match="'proxies'") as bad:
        _ = PredictionOneHook().connection_info
    assert PROXY_PASSWORD not in str(bad.value)


# --- through the proxy, over TLS with a private CA -------------------------------------------


def test_predone_lifecycle_through_the_proxy_over_tls(
    tls_emulator: EmulatorProcess,
    proxy: ProxyProcess,
    pki: Pki,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect(monkeypatch, tls_emulator, proxies=proxy.url, verify=str(pki.ca))
    result = run_dag(EXAMPLES, "predone_lifecycle", output_dir=str(tmp_path))
    assert set(result.states.values()) == {"success"}, result.states
    assert result.xcom("summary")["rows_scored"] == 1000
    served = assert_all_through(proxy, tls_emulator)
    # Every kind of traffic is among them: sync API calls, presigned uploads and downloads, the
    # triggers' status polls and the batch scoring's inference calls (both on aiohttp).
    assert counts(served, "/v1/external/data-sets/upload-url") == 1
    assert counts(served, "/_storage/", "PUT") >= 3  # training data, evaluation data, retraining data
    assert counts(served, "/_storage/", "GET") >= 2  # the training's and the retraining's results
    assert counts(served, "/v1/external/models/results") >= 2  # the train trigger polled
    assert counts(served, "/v1/external/retrain_jobs/") >= 2  # the retrain trigger polled
    assert counts(served, "/v1/external/classifiers/") >= 1  # the deployment trigger polled
    assert counts(served, "/v1/inference/") >= 1000  # batch scoring, twice 500 rows
    assert all(t["status"] == 200 for t in proxy.entries())


def test_aitems_train_through_the_proxy_over_tls(
    tls_emulator: EmulatorProcess, proxy: ProxyProcess, pki: Pki, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, tls_emulator, proxies=proxy.url, verify=str(pki.ca))
    result = run_dag(EXAMPLES, "aitems_train")
    assert set(result.states.values()) == {"success"}, result.states
    served = assert_all_through(proxy, tls_emulator)
    polls = [path for _, method, path in served if method == "GET" and "/trains/" in path]
    assert len(polls) >= 4, served  # the operator's trigger and the sensor's, each polled


# --- a private CA the connection does not trust ------------------------------------------------


def test_without_verify_the_sync_path_fails_clearly_before_any_upload(
    tls_emulator: EmulatorProcess,
    proxy: ProxyProcess,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: None,
    tmp_path: Path,
) -> None:
    connect(monkeypatch, tls_emulator, proxies=proxy.url)
    result = run_dag(EXAMPLES, "predone_train", result_dir=str(tmp_path))
    assert result.states == {"train": "failed"}
    assert emulator_requests(tls_emulator) == []  # no request, let alone an upload, got through
    assert tls_emulator.state()["trainings_started"] == 0
    assert len(proxy.tunnels()) == 1  # one try of the task, and the hook did not retry

    from airflow_provider_predone.hooks.predone import PredictionOneHook

    with pytest.raises(NetworkSettingsError) as failure:
        PredictionOneHook().get_upload_urls()
    message = str(failure.value)
    host = tls_emulator.url.removeprefix("https://")
    assert f"the TLS certificate of {host} could not be verified" in message
    assert "'verify' extra" in message


def test_without_verify_a_trigger_fails_at_once_with_the_error(
    tls_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.triggers.base import validate_event

    connect(monkeypatch, tls_emulator)
    started = time.monotonic()
    event = first_event(train_trigger(timeout=3600))
    assert time.monotonic() - started < 120  # not polled until the 3,600 s deadline (slack for a busy machine)
    assert event["status"] == "error"
    assert event["error_type"] == "NetworkSettingsError"
    assert "could not be verified" in event["message"]
    assert "'verify' extra" in event["message"]
    with pytest.raises(NetworkSettingsError):
        validate_event(event, "external_process_id")


# --- trust_env: the triggerer's environment alone names the proxy ------------------------------


def _aitems_training(emulator: EmulatorProcess) -> tuple[str, dict[str, str]]:
    from airflow_provider_predone.hooks.aitems import AitemsHook

    hook = AitemsHook()
    service = hook.create_service("proxy_env")
    service_id = str(service["serviceId"])
    return service_id, hook.request_training(service_id, ["pop"])


def _aitems_trigger(service_id: str, versions: dict[str, str]) -> Any:
    from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

    return AitemsTrainingTrigger(
        service_id=service_id, versions=versions, conn_id="aitems_default", poll_interval=0.5, timeout=60
    )


def test_trust_env_a_trigger_uses_https_proxy_from_its_environment(
    tls_emulator: EmulatorProcess, proxy: ProxyProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, tls_emulator, verify=str(pki.ca))  # no proxy in the connection
    service_id, versions = _aitems_training(tls_emulator)  # no proxy in this environment yet
    before = len(emulator_requests(tls_emulator))
    assert proxy.tunnels() == []

    monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # as if set for the triggerer only
    assert first_event(_aitems_trigger(service_id, versions))["status"] == "success"
    polls = emulator_requests(tls_emulator)[before:]
    assert polls
    assert all(port in proxy.upstream_ports() for port, _, _ in polls), polls


@pytest.mark.parametrize("bypass", ["no_proxy", "trust_env_false"])
def test_no_proxy_and_trust_env_false_keep_a_trigger_off_the_environment_proxy(
    bypass: str, tls_emulator: EmulatorProcess, proxy: ProxyProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra: dict[str, Any] = {"verify": str(pki.ca)}
    if bypass == "no_proxy":
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    else:
        extra["trust_env"] = False
    connect(monkeypatch, tls_emulator, **extra)
    service_id, versions = _aitems_training(tls_emulator)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert first_event(_aitems_trigger(service_id, versions))["status"] == "success"
    assert proxy.tunnels() == []


# --- mutual TLS -------------------------------------------------------------------------------


def test_client_certificate_on_every_path(
    mtls_emulator: EmulatorProcess,
    pki: Pki,
    proxy: ProxyProcess,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert = [str(pki.client_cert), str(pki.client_key)]
    connect(monkeypatch, mtls_emulator, verify=str(pki.ca), cert=cert, proxies=proxy.url)
    # Sync API calls, presigned upload and download, the training trigger: all with the certificate.
    result = run_dag(EXAMPLES, "predone_train", result_dir=str(tmp_path))
    assert result.states == {"train": "success"}
    served = assert_all_through(proxy, mtls_emulator)
    assert counts(served, "/_storage/", "PUT") >= 2
    assert counts(served, "/_storage/", "GET") >= 1
    assert counts(served, "/v1/external/models/results") >= 2


def test_without_a_client_certificate_a_clear_error(
    mtls_emulator: EmulatorProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    connect(monkeypatch, mtls_emulator, verify=str(pki.ca))
    with pytest.raises(NetworkSettingsError, match=r"requires a TLS client certificate.*'cert' extra"):
        PredictionOneHook().get_upload_urls()
    event = first_event(train_trigger())
    assert (event["status"], event["error_type"]) == ("error", "NetworkSettingsError")
    assert "'cert' extra" in event["message"]
    # The certificate and key in one PEM file work too.
    connect(monkeypatch, mtls_emulator, verify=str(pki.ca), cert=str(pki.client_pem))
    assert PredictionOneHook().get_upload_urls().learn_data_set_upload_url.startswith("https://")


# --- a proxy that wants credentials -----------------------------------------------------------


def test_proxy_credentials(
    tls_emulator: EmulatorProcess, auth_proxy: ProxyProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    wrong = auth_proxy.url_with(PROXY_USER, "not-the-password")
    connect(monkeypatch, tls_emulator, verify=str(pki.ca), proxies=wrong)
    with pytest.raises(NetworkSettingsError) as refused:
        PredictionOneHook().get_upload_urls()
    event = first_event(train_trigger())
    for message in (str(refused.value), event["message"]):
        assert f"the proxy {auth_proxy.url} answered 407" in message
        assert "not-the-password" not in message
        assert PROXY_USER not in message
    assert event["error_type"] == "NetworkSettingsError"
    assert emulator_requests(tls_emulator) == []

    connect(monkeypatch, tls_emulator, verify=str(pki.ca), proxies=auth_proxy.url_with(PROXY_USER, PROXY_PASSWORD))
    assert PredictionOneHook().get_upload_urls().learn_data_set_upload_url.startswith("https://")
    event = first_event(train_trigger())  # the async side authenticates too, then meets an unknown job
    assert event["error_type"] == "NotFoundError"
    assert_all_through(auth_proxy, tls_emulator)
    refusals = Counter(e["status"] for e in auth_proxy.entries() if e["event"] == "refused")
    assert refusals == Counter({407: 2})  # one per path above, neither retried


def test_an_unreachable_proxy_is_named_without_credentials(
    tls_emulator: EmulatorProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.exceptions import TransientApiError
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    connect(
        monkeypatch,
        tls_emulator,
        verify=str(pki.ca),
        proxies=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9",
        max_retries=0,
    )
    with pytest.raises(TransientApiError) as failure:
        PredictionOneHook().get_upload_urls()
    assert "could not get through the proxy http://127.0.0.1:9" in str(failure.value)
    assert PROXY_PASSWORD not in str(failure.value)


def test_a_407_inside_an_address_is_not_a_proxy_refusal() -> None:
    """The unreachable-proxy test above failed once on a 407 that was no status: requests'
    message quotes an object address (0x...407...), and "proxy" is in it too."""
    import requests

    from airflow_provider_predone.exceptions import NetworkSettingsError, TransientApiError
    from airflow_provider_predone.hooks._http import network_failure
    from airflow_provider_predone.hooks.connection import Networking

    proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9"
    network = Networking(proxies=(("https", proxy),), trust_env=False)
    unreachable = requests.exceptions.ProxyError(
        "Unable to connect to proxy",
        OSError("<urllib3.connection.HTTPSConnection object at 0x7f4576407a90>: Failed to establish a new connection"),
    )
    refused = requests.exceptions.ProxyError(
        "Unable to connect to proxy", OSError("Tunnel connection failed: 407 Proxy Authentication Required")
    )
    url = "https://127.0.0.1:34071/v1/external/api-key"
    assert type(network_failure("Get API Key", "Get API Key", url, unreachable, network)) is TransientApiError
    assert isinstance(network_failure("Get API Key", "Get API Key", url, refused, network), NetworkSettingsError)


def test_verify_false_works_and_warns_once_per_hook(
    tls_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import warnings

    from airflow_provider_predone.hooks.predone import PredictionOneHook

    connect(monkeypatch, tls_emulator, verify=False)
    hook = PredictionOneHook()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        for _ in range(3):
            hook.get_upload_urls()
        event = first_event(train_trigger())  # the async side skips verification too
    assert event["error_type"] == "NotFoundError"  # it got an answer: the unknown job
    logged = capfd.readouterr()  # Airflow's structlog writes the hooks' log lines to stdout
    # Once for the hook's three calls, once for the trigger's own hook.
    assert (logged.out + logged.err).count("'verify' is false, so server certificates are not checked") == 2
    assert not [w for w in raised if "Unverified HTTPS request" in str(w.message)]
