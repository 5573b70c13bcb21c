"""`Idempotency-Key` on /v1: a retry gets the first result, with no second call or ledger
row. Real openai SDK and httpx over HTTP against the live ASGI app and the fake upstream."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import openai
import pytest
from django.utils import timezone

import webchat.asgi  # noqa: F401  (loads the ASGI app before any test captures logs)
from apps.billing.models import Hold, LedgerEntry, Period
from apps.billing.services import quota_policy_set
from apps.gateway.idempotency import idempotent_requests_expire
from apps.gateway.models import IdempotentRequest
from apps.gateway.services import api_key_create
from apps.providers.models import ChatModel
from tests.conftest import LiveServer, People
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.gateway.conftest import MODEL, client_for

pytestmark = pytest.mark.django_db(transaction=True)
ASK = [{"role": "user", "content": "Say hello"}]


def once(key: str) -> dict[str, dict[str, str]]:
    return {"extra_headers": {"Idempotency-Key": key}}


def test_a_retry_gets_the_first_result_and_is_not_billed_again(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, **once("lesson-3-q1"))
    again = client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, **once("lesson-3-q1"))
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.parse().id == first.parse().id and again.parse().usage == first.parse().usage
    assert len(fake_upstream.chat_requests()) == 1 and LedgerEntry.objects.count() == 1
    # Without the header, or with another key, it is a new request.
    client.chat.completions.create(model=MODEL, messages=ASK)
    client.chat.completions.create(model=MODEL, messages=ASK, **once("lesson-3-q2"))
    assert len(fake_upstream.chat_requests()) == 3 and LedgerEntry.objects.count() == 3


def test_a_retried_stream_is_the_same_stream(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)

    def run() -> list[str]:
        stream = client.chat.completions.create(
            model=MODEL, messages=ASK, stream=True, stream_options={"include_usage": True}, **once("s-1")
        )
        return [chunk.model_dump_json() for chunk in stream]

    assert run() == run()
    assert len(fake_upstream.chat_requests()) == 1 and LedgerEntry.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)
    client.chat.completions.create(model=MODEL, messages=ASK, **once("k"))
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "other"}], **once("k"))
    assert "Idempotency-Key" in error.value.message
    assert LedgerEntry.objects.count() == 1


def test_the_same_body_written_another_way_is_the_same_request(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """Another client (curl after the SDK, a pretty-printed retry) writes the same JSON with
    other spacing and key order: the key still names the same request."""
    url, headers = live_asgi.url + "/v1/chat/completions", {"Authorization": f"Bearer {key}", "Idempotency-Key": "p-1"}
    compact = b'{"model":"%s","messages":[{"role":"user","content":"Say hello"}]}' % MODEL.encode()
    pretty = b'{\n  "messages": [ {"content": "Say hello", "role": "user"} ],\n  "model": "%s"\n}' % MODEL.encode()
    first = httpx.post(url, content=compact, headers=headers, timeout=30)
    again = httpx.post(url, content=pretty, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert len(fake_upstream.chat_requests()) == 1 and LedgerEntry.objects.count() == 1


def test_keys_belong_to_their_user(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People, fake_upstream: FakeUpstream
) -> None:
    other = api_key_create(user=people.classmate, name="theirs")[1]
    client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, **once("shared"))
    replay = client_for(live_asgi, other).chat.completions.with_raw_response.create(
        model=MODEL, messages=ASK, **once("shared")
    )
    assert "Idempotent-Replayed" not in replay.headers
    assert {entry.user_id for entry in LedgerEntry.objects.all()} == {people.student.pk, people.classmate.pk}


def test_a_refused_request_is_not_kept_so_its_retry_runs(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People
) -> None:
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=10)
    client = client_for(live_asgi, key)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=ASK, **once("after-reset"))
    assert not IdempotentRequest.objects.exists()
    quota_policy_set(classroom=people.classroom, period=Period.MONTH)
    assert client.chat.completions.create(model=MODEL, messages=ASK, **once("after-reset")).choices


def test_a_retry_while_the_first_runs_is_a_conflict(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(headers_delay=1.5))
    client = client_for(live_asgi, key)
    results: list[object] = []
    first = threading.Thread(
        target=lambda: results.append(client.chat.completions.create(model=MODEL, messages=ASK, **once("slow")))
    )
    first.start()
    try:
        deadline = timezone.now() + timedelta(seconds=5)
        while not IdempotentRequest.objects.exists() and timezone.now() < deadline:
            pass
        with pytest.raises(openai.ConflictError) as error:
            client.chat.completions.create(model=MODEL, messages=ASK, **once("slow"))
        assert error.value.response.headers["Retry-After"] == "1"
    finally:
        first.join(10)
    assert results and LedgerEntry.objects.count() == 1


def test_a_stream_its_client_left_is_replayed_as_far_as_it_went_and_says_so(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(chunks=["one ", "two ", "three ", "four"], delay=0.3))
    body = {"model": MODEL, "messages": ASK, "stream": True}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "left"}
    with httpx.stream(
        "POST", live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10
    ) as response:
        for line in response.iter_lines():
            if "one" in line:
                break  # the client goes away mid-stream
    deadline = timezone.now() + timedelta(seconds=10)
    while not IdempotentRequest.objects.filter(finished_at__isnull=False).exists() and timezone.now() < deadline:
        pass
    entry = LedgerEntry.objects.get()
    assert entry.status == "stopped"
    replay = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "one" in replay.text and "idempotent_request_stopped" in replay.text and "[DONE]" not in replay.text
    assert LedgerEntry.objects.count() == 1 and len(fake_upstream.chat_requests()) == 1


def test_a_stream_its_client_left_before_the_first_piece_is_stopped_billed_once_and_replayed_as_stopped(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """The streamed response begins with the reply's first piece: a client that gives up
    waiting for it leaves a request the provider was already asked."""
    # First a request that loads what a process loads once (the tokenizer's tables): then
    # the client below surely leaves after the provider was asked.
    client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK)
    fake_upstream.push(Behaviour(headers_delay=1.0))
    body = {"model": MODEL, "messages": ASK, "stream": True}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "gave-up"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=0.4)
    deadline = timezone.now() + timedelta(seconds=10)
    while not IdempotentRequest.objects.filter(finished_at__isnull=False).exists() and timezone.now() < deadline:
        pass
    entry = LedgerEntry.objects.get(status="stopped")
    assert (entry.entry_point, entry.completion_tokens) == ("api", 0)
    assert not Hold.objects.filter(status=Hold.Status.ACTIVE).exists()
    replay = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert replay.status_code == 409 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["error"]["code"] == "idempotent_request_stopped"
    assert LedgerEntry.objects.count() == 2 and len(fake_upstream.chat_requests()) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_fault_that_cost_nothing_is_not_kept_so_its_retry_runs(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream, settings: Any, stream: bool
) -> None:
    """A provider busy (503) before it answered: nothing was billed, so the same
    Idempotency-Key asks again once it is back, instead of replaying the 503 for a day."""
    settings.LLM_MAX_ATTEMPTS = 1
    fake_upstream.push(Behaviour(status=429, retry_after="0"))
    body = {"model": MODEL, "messages": ASK, "stream": stream}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "busy-then-back"}
    first = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert "upstream_rate_limited" in first.text
    assert not IdempotentRequest.objects.exists()
    second = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert second.status_code == 200 and "Idempotent-Replayed" not in second.headers
    assert "Hello" in second.text and "upstream_rate_limited" not in second.text
    third = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert third.headers["Idempotent-Replayed"] == "true" and third.text == second.text
    assert len(fake_upstream.chat_requests()) == 2


def test_a_malformed_key_is_refused(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    with pytest.raises(openai.BadRequestError):
        client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, **once("has spaces"))
    assert not LedgerEntry.objects.exists()


def test_results_are_kept_for_a_day(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)
    client.chat.completions.create(model=MODEL, messages=ASK, **once("day"))
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    # A day later the same key is a new request...
    fresh = client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, **once("day"))
    assert "Idempotent-Replayed" not in fresh.headers and LedgerEntry.objects.count() == 2
    # ...and the periodic clean-up drops what is older than that.
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotent_requests_expire() == 1 and not IdempotentRequest.objects.exists()


def test_the_clean_up_is_a_scheduled_task() -> None:
    from webchat.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "gateway.expire_idempotent_requests" in tasks
    assert "gateway.expire_idempotent_requests" in app.tasks


def test_a_replayed_billed_fault_tells_the_sdk_not_to_retry_it(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """A fault after the provider began answering was billed, and is kept: its replay is
    the same answer, so the SDK (which retries a 5xx by itself) is told not to ask again."""
    fake_upstream.push(Behaviour(drop_after=2))
    body = {"model": MODEL, "messages": ASK}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "dropped"}
    first = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert first.status_code == 502 and first.headers["x-should-retry"] == "false"
    replay = httpx.post(live_asgi.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.status_code == 502
    assert replay.headers["x-should-retry"] == "false" and replay.text == first.text
    assert LedgerEntry.objects.count() == 1 and len(fake_upstream.chat_requests()) == 1
