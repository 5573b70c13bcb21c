"""The SDK client a turn uses: made once per pooled HTTP client and base URL, holding no key."""

from __future__ import annotations

import os
import threading
import traceback

import pytest
from openai._base_client import get_platform

from apps.providers.client import NO_KEY_PLACEHOLDER, Route, _authorization, _sdk_client
from apps.providers.models import ChatModel
from apps.providers.netguard import PooledTransport, http_client_shared
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import FakeUpstream

ROUTE = Route(
    model_id=1, provider_slug="fakeai", model_name="fake-model", base_url="http://127.0.0.1:9/v1", api_key="sk-one"
)


async def test_one_client_per_base_url_made_once_and_it_holds_no_key() -> None:
    other_key = Route(**{**ROUTE.__dict__, "api_key": "sk-two"})
    other_site = Route(**{**ROUTE.__dict__, "base_url": "http://127.0.0.1:9/other/v1"})

    client = _sdk_client(ROUTE)

    assert _sdk_client(other_key) is client
    assert _sdk_client(other_site) is not client and _sdk_client(ROUTE, checking=True) is not client
    assert client.api_key == NO_KEY_PLACEHOLDER  # each request carries its own
    assert await _authorization(ROUTE) == {"Authorization": "Bearer sk-one"}
    assert await _authorization(other_key) == {"Authorization": "Bearer sk-two"}
    assert client._client is http_client_shared(user_supplied_url=False)


def test_every_pool_shares_the_certificate_store_loaded_once_per_process() -> None:
    # Loading it is some 20 ms of CPU, and was done for every pool (twice: httpx's own pool,
    # which ours replaces, loaded one too).
    first, second = PooledTransport(public_only=False), PooledTransport(public_only=False)
    public = PooledTransport(public_only=True)

    assert first._pool._ssl_context is second._pool._ssl_context
    assert public._pool._ssl_context is PooledTransport(public_only=True)._pool._ssl_context
    # The public-only pool ignores the environment's certificate settings; the site's may not.
    assert public._pool._ssl_context is not first._pool._ssl_context


async def test_the_client_knows_the_platform_so_its_first_request_needs_no_thread() -> None:
    # A fresh AsyncOpenAI reads the platform on a worker thread before its first request
    # (for its X-Stainless-OS header).
    client = _sdk_client(Route(**{**ROUTE.__dict__, "base_url": "http://127.0.0.1:9/third/v1"}))

    assert client._platform is not None
    assert client.default_headers["X-Stainless-OS"] == str(get_platform())


@pytest.mark.django_db(transaction=True)
async def test_a_turn_draws_no_system_randomness_on_the_event_loop(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK drew an idempotency key from os.urandom for every request (and sent it to no
    # provider): a system call that lets go of the GIL, after which the event loop waited for
    # the database threads. The request's own id is the key now.
    loop_thread = threading.current_thread()
    drawn: list[str] = []
    system_random = os.urandom

    def recording(size: int) -> bytes:
        if threading.current_thread() is loop_thread:
            drawn.append("".join(traceback.format_stack(limit=4)))
        return system_random(size)

    ws = await ws_connect(people.student)
    try:
        assert (await ws.connect())[0]
        monkeypatch.setattr(os, "urandom", recording)
        frames = await ws_turn(ws, model=fake_model.route_name, content="What is a token?")
    finally:
        await ws.disconnect()

    assert frames[-1]["type"] == "chat.done" and drawn == []
    assert "idempotency-key" not in {name.lower() for name in fake_upstream.chat_requests()[-1].headers}


def test_openais_own_api_is_asked_max_completion_tokens_and_other_servers_max_tokens() -> None:
    """OpenAI refuses `max_tokens` for its reasoning models (o-series, GPT-5) and takes
    `max_completion_tokens` for every model; OpenAI-compatible servers know `max_tokens`."""
    openai_route = Route(**{**ROUTE.__dict__, "provider_slug": "openai", "base_url": "https://api.openai.com/v1"})
    elsewhere = Route(**{**ROUTE.__dict__, "provider_slug": "openai", "base_url": "http://10.0.0.5:8000/v1"})

    assert openai_route.max_tokens_param == "max_completion_tokens"
    assert elsewhere.max_tokens_param == ROUTE.max_tokens_param == "max_tokens"
