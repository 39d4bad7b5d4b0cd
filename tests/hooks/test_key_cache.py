"""The API key cache's single-flight locks work in every event loop a process runs."""

from __future__ import annotations

import asyncio

from airflow_provider_predone.hooks.predone import ApiKeyCache
from airflow_provider_predone.protocol import predone as api


def test_locks_are_not_bound_to_an_earlier_event_loop() -> None:
    # A worker runs one event loop per non-deferrable wait (asyncio.run); a lock that a
    # waiter bound to the first loop would raise "bound to a different event loop" in the next.
    cache = ApiKeyCache()
    key = ("https://example", "fingerprint", "retrain", "7")

    async def contend() -> int:
        order = []

        async def take(n: int) -> None:
            async with cache.lock(key):
                await asyncio.sleep(0.01)
                order.append(n)

        await asyncio.gather(take(1), take(2), take(3))
        return len(order)

    assert [asyncio.run(contend()) for _ in range(3)] == [3, 3, 3]


def test_secrets_in_answers_cover_keys_and_presigned_urls() -> None:
    url = "https://storage.example/blob?X-Signature=abcdef123456&expires=99"
    status = api.TrainStatus(status="finished", result_url=url)
    assert api.secrets_in(status) == [url, "X-Signature=abcdef123456&expires=99", "abcdef123456"]
    prediction_api = api.PredictionApi("c1", 1, "running", 1, True, "inference-key-1", "https://x", {})
    assert api.secrets_in([prediction_api]) == ["inference-key-1"]
    page = api.Page(items=[{"data_set_id": 1, "download_url": url}], offset=0, limit=30, total=1)
    assert url in api.secrets_in(page)
    assert api.secrets_in(api.RetrainStatus(status="job_running", retrain_job_id="j")) == []
    # What the async side keeps of a status: no URL, so nothing to mask (see the triggers' test).
    assert api.secrets_in(api.without_urls(status)) == []
    retrain = api.RetrainStatus(status="job_finished", retrain_job_id="j", download_url=url)
    assert api.without_urls(retrain) == api.RetrainStatus(status="job_finished", retrain_job_id="j")
    assert api.without_urls(prediction_api) is prediction_api


def test_answer_excerpts_in_errors_carry_no_query_string() -> None:
    from airflow_provider_predone.protocol.common import snippet

    body = b'{"status": "finished", "result_url": "https://s.example/r.zip?X-Signature=abcdef123456&e=1"}'
    assert "abcdef123456" not in snippet(body)
    assert snippet(body).startswith('{"status": "finished", "result_url": "https://s.example/r.zip?')
