"""What a provider, or a server a student typed, can send back or make us wait for, and what
it costs us: SSE lines ended any way the format allows, bodies past their caps whatever type
they claim, names that take forever to look up, odd model lists, keys no header can carry;
and nothing of this server's own OpenAI settings goes to a provider."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpcore2
import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from apps.providers import client as providers
from apps.providers import netguard
from apps.providers.client import CallEnded, Route, key_check
from apps.providers.netguard import BlockedURL, PublicOnlyBackend, url_check_public
from apps.providers.services import _clean_key
from tests.fake_upstream import FakeUpstream

FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def text_event(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def route_to(port: int, **extra: Any) -> Route:
    return Route(
        model_id=1,
        provider_slug="rawai",
        model_name="raw-model",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-raw",
        **extra,
    )


def route_to_fake(upstream: FakeUpstream, **extra: Any) -> Route:
    return Route(model_id=1, provider_slug="fakeai", model_name="fake-model", base_url=upstream.base_url, **extra)


@asynccontextmanager
async def answering(
    *writes: bytes, status: bytes = b"200 OK", content_type: bytes = b"text/event-stream", pause: float = 0.003
) -> AsyncIterator[int]:
    """A server that answers every request with `writes`, sent one by one with a pause
    between them (so they arrive as separate pieces), then closes the connection."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n")
        for piece in writes:
            await asyncio.sleep(pause)
            writer.write(piece)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def streamed(route: Route, max_tokens: int = 50) -> tuple[str, CallEnded]:
    texts: list[str] = []
    ended = None
    async for piece in providers.stream(
        routes=[route], messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens, request_id="r1"
    ):
        if isinstance(piece, str):
            texts.append(piece)
        elif isinstance(piece, CallEnded):
            ended = piece
    assert ended is not None
    return "".join(texts), ended


def sse(events: list[dict[str, Any]], end: bytes) -> bytes:
    """The events as SSE, every line ended by `end`, then [DONE]."""
    lines = [b"data: " + json.dumps(event).encode() + end + end for event in events]
    return b"".join(lines) + b"data: [DONE]" + end + end


EVENTS = [text_event("Hello"), text_event(", "), text_event("class"), text_event("!"), FINISH]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("size", [1, 3, 7, 64])
async def test_sse_lines_ended_by_lf_crlf_or_cr_read_alike_however_they_arrive(end: bytes, size: int) -> None:
    """SSE ends a line with LF, CRLF or CR alone. Cut into pieces of every size, a CRLF
    split between two pieces included, the reply reads the same."""
    body = b": a comment first" + end + sse(EVENTS, end)
    pieces = [body[at : at + size] for at in range(0, len(body), size)]
    async with answering(*pieces, pause=0.0005 if size < 8 else 0.003) as port:
        text, ended = await streamed(route_to(port))
    assert text == "Hello, class!"
    assert ended.error is None and ended.finish_reason == "stop"


async def test_a_stream_of_lines_ended_by_cr_alone_is_many_lines_not_one_growing_line(settings: Any) -> None:
    """Lines ended by CR alone count as lines for the caps and for reading alike: many short
    events, together far over the cap on one line, are read as the events they are."""
    settings.LLM_MAX_REPLY_BYTES = 2_000  # a line may hold 4 x that + 64 KiB
    events = [text_event("x")] * 2_000 + [FINISH]  # some 150 KB, as one line if CR were no line end
    body = sse(events, b"\r")
    async with answering(*[body[at : at + 4096] for at in range(0, len(body), 4096)], pause=0.0) as port:
        text, ended = await streamed(route_to(port))
    assert ended.error is None
    assert text == "x" * 2_000


async def test_a_long_line_trickled_in_small_pieces_is_read_whole() -> None:
    long_text = "token " * 20_000  # 120 KB of text in one data line: 20,000 tokens
    body = sse([text_event(long_text), FINISH], b"\n")
    async with answering(*[body[at : at + 512] for at in range(0, len(body), 512)], pause=0.0) as port:
        text, ended = await streamed(route_to(port), max_tokens=20_000)
    assert (text, ended.error) == (long_text, None)


@pytest.mark.parametrize("content_type", [b"text/event-stream", b"application/json"])
async def test_an_error_body_gets_the_small_cap_whatever_type_it_claims(settings: Any, content_type: bytes) -> None:
    """The SDK reads an error's body whole: it is held to the cap for bodies read whole (a
    line's), not the stream's, even when the server calls it an event stream."""
    settings.LLM_MAX_REPLY_BYTES = 2_000  # whole bodies: 4 x 2,000 + 64 KiB; streams: 128 x 2,000
    settings.LLM_MAX_ATTEMPTS = 1
    line = b"x" * 1_000 + b"\n"
    async with answering(*[line * 20] * 10, status=b"500 Internal Server Error", content_type=content_type) as port:
        _text, ended = await streamed(route_to(port))  # 200 KB: over the first, under the second
    assert ended.error is not None and ended.error.code == "upstream_too_large"


@pytest.fixture
def slow_name() -> Iterator[str]:
    """A host name whose lookup never answers (a name server that does not reply), until
    the test ends; other names resolve as usual."""
    name, released, real = "slow-name.example", threading.Event(), socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            released.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = lookup  # type: ignore[assignment]
    try:
        yield name
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]
        released.set()


async def test_a_name_that_never_resolves_times_out_with_the_connect_timeout(slow_name: str) -> None:
    started = time.monotonic()
    with pytest.raises(httpcore2.ConnectTimeout):
        await PublicOnlyBackend().connect_tcp(slow_name, 443, timeout=0.3)
    assert time.monotonic() - started < 2


async def test_names_that_never_resolve_leave_the_threads_others_need_free(slow_name: str) -> None:
    """Lookups stuck in a student's name server hold threads of their own: the database
    steps (the loop's default executor) and the site's providers go on."""
    stuck = [
        asyncio.ensure_future(PublicOnlyBackend().connect_tcp(slow_name, 443, timeout=5))
        for _ in range(netguard.USER_LOOKUP_THREADS + 4)
    ]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert await asyncio.get_running_loop().run_in_executor(None, lambda: "database step") == "database step"
    assert time.monotonic() - started < 1
    for lookup in stuck:
        lookup.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)


def test_a_name_that_never_resolves_is_refused_in_time_when_typed(slow_name: str, settings: Any) -> None:
    settings.LLM_CONNECT_TIMEOUT = 0.3
    started = time.monotonic()
    with translation.override("en"), pytest.raises(BlockedURL, match="in time"):
        url_check_public(f"https://{slow_name}/v1")
    assert time.monotonic() - started < 2


async def test_none_of_this_servers_openai_settings_reach_a_provider(
    fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK reads an organization, a project and extra headers from the environment; the
    server's environment is not a provider's (and a student's server must not see it)."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-site")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-site")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-site")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Gateway-Key: site-secret\nAuthorization: Bearer sk-site")
    providers._sdk_clients.clear()
    try:
        route = route_to_fake(fake_upstream, api_key="sk-own")
        _text, ended = await streamed(route)
        assert await key_check(route) == "works"
    finally:
        providers._sdk_clients.clear()
    assert ended.error is None
    sent = [request.headers for request in fake_upstream.requests]
    assert len(sent) == 2
    for headers in sent:
        names = {name.lower() for name in headers}
        assert not names & {"openai-organization", "openai-project", "x-gateway-key"}
        assert headers["authorization"] == "Bearer sk-own"
        assert "site" not in json.dumps(headers)


# A 200 with any JSON object is a key the server took ("works"); these are no model list at all.
@pytest.mark.parametrize("body", [b'"hello"', b"[]", b"null", b"[" * 50_000 + b"]" * 50_000])
async def test_testing_a_key_against_an_odd_model_list_says_error(body: bytes) -> None:
    async with answering(body, content_type=b"application/json") as port:
        assert await key_check(route_to(port)) == "error"


def test_a_key_with_characters_no_header_can_carry_is_refused_when_entered() -> None:
    for key in ("sk-ключ", "sk-abc\x00def", "sk-abc\u200bdef", "sk-tab\there"):
        with pytest.raises(ValidationError):
            _clean_key(key, "api_key")
    assert _clean_key("  sk-proj-AbC_123.xyz~!  ", "api_key") == "sk-proj-AbC_123.xyz~!"


async def test_a_stored_key_no_header_can_carry_is_a_rejected_key_not_a_crash(fake_upstream: FakeUpstream) -> None:
    route = route_to_fake(fake_upstream, api_key="sk-ключ", credential_id=7)
    _text, ended = await streamed(route)
    assert ended.error is not None and ended.error.code == "upstream_auth_failed"
    assert ended.rejected_credentials == (7,)
    assert fake_upstream.chat_requests() == []
    assert await key_check(route) == "rejected"
