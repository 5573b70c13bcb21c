"""The LLM client: one streamed chat completion over the openai SDK.

Every provider is OpenAI-compatible, the built-in demo included, so there is exactly one
code path. Faults are turned into `UpstreamError` with a stable code; the pipeline decides
what to retry (only before the first chunk reached the user).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from openai import AsyncAPIResponse, AsyncOpenAI, AsyncStream
from openai._base_client import Platform, get_platform  # what a client's headers name, read once

# The header the SDK's own `with_streaming_response` sets to hand back the unread response.
from openai._constants import RAW_RESPONSE_HEADER
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from webchat.errors import BAD_JSON, ErrorCode

from .netguard import BLOCKED_MARKER, ReplyRefused, http_client_for, http_client_shared
from .tokens import encoding_for_model, encoding_get

logger = logging.getLogger(__name__)

# Without a key the SDK refuses to build a client; servers that need none ignore it.
NO_KEY_PLACEHOLDER = "no-key"
OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class Route:
    """Where one request goes: provider + model + key. `api_key` never leaves this object
    except in the Authorization header; `repr` hides it."""

    model_id: int
    provider_slug: str
    model_name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    credential_id: int | None = None
    credential_scope: str = "none"
    auth_style: str = "bearer"
    token_url: str = ""
    user_supplied_url: bool = False
    # The model's own limits, where known: the most it writes in one reply (what it is asked
    # for is never more), and whether it thinks first (ChatModel.thinks).
    max_output_tokens: int | None = None
    thinks: bool = False

    @property
    def exchanges_token(self) -> bool:
        """ERNIE with API Key + Secret Key: the bearer is an access token fetched first."""
        return self.auth_style == "ernie" and bool(self.secret_key)

    @property
    def route_name(self) -> str:
        return f"{self.provider_slug}/{self.model_name}"

    @property
    def max_tokens_param(self) -> str:
        """OpenAI's own API refuses `max_tokens` for its reasoning models (o-series, GPT-5) and
        takes `max_completion_tokens` for all; OpenAI-compatible servers know `max_tokens`."""
        return "max_completion_tokens" if urlsplit(self.base_url).hostname == OPENAI_HOST else "max_tokens"


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them. A count that is missing or is not a
    whole number >= 0 is None, and `malformed` says so: the pipeline bills its own count
    for it. Implausibly large counts are kept here and bounded when settling."""

    prompt_tokens: int | None
    completion_tokens: int | None
    malformed: bool = False


class UpstreamError(Exception):
    """A provider fault. `code` is stable and shown to users; `retryable` says whether trying
    again (before anything reached the user) may help."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str = "",
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after_seconds(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nonsense: our own backoff
    # "nan" parses, and a sleep of NaN seconds never ends.
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def upstream_error_from(exc: BaseException) -> UpstreamError:
    """Map SDK and transport exceptions to our codes. Never include request headers (the
    key) in the detail: only the status and the provider's own error text."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, ReplyRefused):
        return UpstreamError(exc.code, exc.detail)
    if isinstance(exc, openai.APIConnectionError) and isinstance(exc.__cause__, ReplyRefused):
        return UpstreamError(exc.__cause__.code, exc.__cause__.detail)
    if isinstance(exc, openai.RateLimitError):
        return UpstreamError(
            ErrorCode.UPSTREAM_RATE_LIMITED,
            "429",
            status=429,
            retryable=True,
            retry_after=_retry_after_seconds(exc.response),
        )
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, str(exc.status_code), status=exc.status_code)
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
        return UpstreamError(
            ErrorCode.UPSTREAM_ERROR if retryable else ErrorCode.UPSTREAM_REJECTED,
            str(exc.status_code),
            status=exc.status_code,
            retryable=retryable,
            retry_after=_retry_after_seconds(exc.response),
        )
    if isinstance(exc, (openai.APITimeoutError, TimeoutError, httpx2.TimeoutException)):
        return UpstreamError(ErrorCode.UPSTREAM_TIMEOUT, "timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        if BLOCKED_MARKER in repr(exc.__cause__) or BLOCKED_MARKER in str(exc.__cause__):
            return UpstreamError(ErrorCode.UPSTREAM_BLOCKED, "non-public address")
        return UpstreamError(ErrorCode.UPSTREAM_UNREACHABLE, type(exc.__cause__ or exc).__name__, retryable=True)
    if isinstance(exc, (httpx2.HTTPError, openai.APIError)):
        return UpstreamError(ErrorCode.UPSTREAM_DROPPED, type(exc).__name__)
    raise exc


def _token_count(value: object) -> int | None:
    """A reported token count, if it is one: a whole number >= 0 (12.0 passes as 12).
    Strings, fractions, booleans, negatives and None are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _usage_read(raw: object) -> Usage | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return Usage(prompt_tokens=None, completion_tokens=None, malformed=True)
    prompt = _token_count(raw.get("prompt_tokens"))
    completion = _token_count(raw.get("completion_tokens"))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, malformed=prompt is None or completion is None)


def _malformed(what: str) -> UpstreamError:
    return UpstreamError(ErrorCode.UPSTREAM_DROPPED, f"malformed stream: {what}")


@dataclass(frozen=True, slots=True)
class ToolCallsDelta:
    """A piece of the tool calls a model makes, as OpenAI's stream sends them (`index`, and
    `id`, `type`, `function.name` on a call's first piece, `function.arguments` in pieces)."""

    calls: list[dict[str, Any]]

    @property
    def text(self) -> str:
        """What these pieces add to the reply's length (and to the tokens it is billed for)."""
        return "".join(
            str(call.get("function", {}).get("name") or "") + str(call.get("function", {}).get("arguments") or "")
            for call in self.calls
        )


@dataclass(frozen=True, slots=True)
class MayBill:
    """Whether the provider may bill the prompt so far, for a caller that stops before any
    text: True from the moment a request is sent (the provider may be working on it), and
    False again when every request so far was refused with an error status (429, 5xx: no
    provider bills a request it refused) before one was taken (2xx). Before the first send
    it is False: a turn stopped then costs nothing."""

    value: bool


SENT = MayBill(True)


@dataclass(frozen=True, slots=True)
class _Accepted:
    """Within `stream`: the attempt's request was taken (2xx)."""


_ACCEPTED = _Accepted()


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A piece of a reasoning model's thinking (`reasoning_content`, or OpenRouter's
    `reasoning`): not relayed, but output the provider bills, so counted for the reply when
    no usage report says more (a reply stopped while it was thinking)."""

    text: str


def _tool_calls_read(value: object) -> list[dict[str, Any]]:
    """delta.tool_calls, checked enough that relaying it cannot break our caller's client:
    a list of objects with an integer index and, where present, string id/name/arguments."""
    if not isinstance(value, list):
        raise _malformed("tool_calls is not a list")
    calls = []
    for call in value:
        function = call.get("function", {}) if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or isinstance(call.get("index"), bool)
            or not isinstance(call.get("index"), int)
            or not isinstance(call.get("id"), str | None)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str | None)
            or not isinstance(function.get("arguments"), str | None)
        ):
            raise _malformed("a tool call is not in OpenAI's shape")
        piece: dict[str, Any] = {"index": call["index"]}
        if call.get("id"):
            piece["id"] = call["id"]
            piece["type"] = "function"
        piece["function"] = {k: function[k] for k in ("name", "arguments") if function.get(k) is not None}
        calls.append(piece)
    return calls


def _chunk_read(data: bytes) -> tuple[str, str | None, Usage | None, list[dict[str, Any]] | None, str]:
    """One SSE event's data: (text, finish reason, usage, tool call pieces, reasoning), checked. A provider's `choices:
    "x"` or `content: 5` breaks the protocol: that is the provider's fault (upstream_dropped),
    never a crash here. Plain dicts from one JSON parse: no typed object per chunk."""
    try:
        chunk = json.loads(data.decode())  # UTF-8, as SSE is: json's own guess costs more than the parse
    except BAD_JSON:
        raise _malformed("a data line is not JSON") from None
    if not isinstance(chunk, dict):
        raise _malformed("a chunk is not a JSON object")
    if "error" in chunk and not chunk.get("choices"):
        raise UpstreamError(ErrorCode.UPSTREAM_ERROR, "an error event in the stream")
    choices = chunk.get("choices")
    if choices is None:
        choices = []  # some servers leave it out of the final usage chunk
    if not isinstance(choices, list):
        raise _malformed("choices is not a list")
    text, finish, tool_calls, reasoning = "", None, None, ""
    for choice in choices:
        if not isinstance(choice, dict):
            raise _malformed("a choice is not an object")
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        reason = choice.get("finish_reason")
        if not isinstance(delta, dict) or not isinstance(content, str | None) or not isinstance(reason, str | None):
            raise _malformed("a choice's delta content or finish reason is not a string")
        if content:
            text += content
        if delta.get("tool_calls"):
            tool_calls = (tool_calls or []) + _tool_calls_read(delta["tool_calls"])
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(thought, str):
            reasoning += thought
        finish = reason or finish
    if "\x00" in text:
        text = text.replace("\x00", "")  # a NUL cannot be stored in PostgreSQL text; no reply needs one
    return text, finish, _usage_read(chunk.get("usage")), tool_calls, reasoning


async def _json_or_sse(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A body not labelled text/event-stream: SSE all the same (some small servers label
    their stream application/json), or one JSON chat.completion from a server that ignored
    `stream: true` (a student's own small server often does). Which, its first bytes tell:
    a JSON object opens with `{`, an SSE line never does."""
    pieces = aiter(body)
    start = b""
    async for piece in pieces:
        start += piece
        if start.lstrip():
            break
    if not start.lstrip().startswith(b"{"):
        yield start
        async for piece in pieces:
            yield piece
        return
    async for piece in _whole_reply_as_sse(start, pieces):
        yield piece


async def _whole_reply_as_sse(start: bytes, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """One JSON chat.completion as the one chunk event it would have streamed, so it is read,
    capped and billed as any stream is. It was a failed reply, asked again on every attempt,
    each of which the server billed."""
    whole = start + b"".join([piece async for piece in body])  # capped by the transport (netguard)
    try:
        completion = json.loads(whole.decode())
    except BAD_JSON:
        raise _malformed("a JSON reply that is not JSON") from None
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list):
        # An error body, or no reply: judged as a chunk would be (one line, whatever its layout).
        yield b"data: " + json.dumps(completion).encode() + b"\n\n"
        return
    chunk: dict[str, Any] = {"choices": []}
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise _malformed("a choice of a JSON reply has no message")
        delta = dict(message)
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [
                {"index": index, **call} if isinstance(call, dict) else call
                for index, call in enumerate(delta["tool_calls"])
            ]
        # The whole reply is here: without a finish reason it still ended.
        finish = choice.get("finish_reason") or ("tool_calls" if delta.get("tool_calls") else "stop")
        chunk["choices"].append({"index": choice.get("index", 0), "delta": delta, "finish_reason": finish})
    if "usage" in completion:
        chunk["usage"] = completion["usage"]
    yield b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


def _text_cut_to_bytes(text: str, limit: int) -> str:
    return text.encode()[: max(limit, 0)].decode(errors="ignore")  # never inside a character


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The last thing `stream` yields: which route answered (or failed last), the usage it
    reported, the fault that ended it (None: complete), and credentials a provider rejected
    (to be marked failing by the caller's write step)."""

    route: Route
    usage: Usage | None
    error: UpstreamError | None
    rejected_credentials: tuple[int, ...] = ()
    finish_reason: str | None = None  # the provider's: stop, length, tool_calls, content_filter


@dataclass(frozen=True, slots=True)
class _Finish:
    reason: str


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins, within a cap."""
    if retry_after is not None:
        return min(retry_after, settings.LLM_RETRY_AFTER_CAP)
    base = settings.LLM_BACKOFF_BASE * (2**attempt)
    return random.uniform(0, min(base, settings.LLM_RETRY_AFTER_CAP))


async def stream(
    *,
    routes: list[Route],
    messages: list[dict[str, Any]],
    max_tokens: int | None,
    params: dict[str, Any] | None = None,
    request_id: str,
) -> AsyncIterator[str | ToolCallsDelta | Reasoning | MayBill | CallEnded]:
    """Stream one chat completion over a list of routes. Yields whether the provider may
    bill the prompt when that changes (MayBill), the reply's text as it arrives (str), the
    pieces of any tool calls (ToolCallsDelta) and of a reasoning model's thinking
    (Reasoning), then exactly one CallEnded.

    Each route is tried LLM_MAX_ATTEMPTS times (backoff with jitter, Retry-After honoured),
    then the next route (failover), but only while nothing has been yielded: after the
    first text (or thinking, which the provider bills) a fault ends the reply. Connect, first-chunk and idle timeouts and the
    reply-size cap apply to every attempt; LLM_TOTAL_TIMEOUT bounds the whole call, every
    attempt, wait and route together (a hold expires only past it: HOLD_EXPIRY_SECONDS).
    Cancelling the iteration ends the call.
    """
    attempts = max(settings.LLM_MAX_ATTEMPTS, 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.LLM_TOTAL_TIMEOUT
    rejected: list[int] = []
    error: UpstreamError | None = None
    usage: Usage | None = None
    accepted = False  # an attempt's request was taken (2xx): the provider may bill its prompt
    route = routes[0]
    for route in routes:
        for attempt in range(attempts):
            relayed = False
            usage = None
            finish: str | None = None
            try:
                async for piece in _call(
                    route=route,
                    messages=messages,
                    max_tokens=max_tokens,
                    params=params,
                    request_id=request_id,
                    deadline=deadline,
                ):
                    if type(piece) is str or type(piece) is ToolCallsDelta or type(piece) is Reasoning:
                        # Thinking counts too: the provider bills it, so no other attempt.
                        relayed = True
                        yield piece
                    elif type(piece) is _Finish:
                        finish = piece.reason
                    elif type(piece) is MayBill:
                        yield piece
                    elif type(piece) is _Accepted:
                        accepted = True
                    else:
                        usage = piece  # type: ignore[assignment]
                yield CallEnded(
                    route=route, usage=usage, error=None, rejected_credentials=tuple(rejected), finish_reason=finish
                )
                return
            except UpstreamError as exc:
                error = exc
                if exc.status is not None and not accepted:
                    yield MayBill(False)  # refused with a status, as every attempt before it
                if exc.code == ErrorCode.UPSTREAM_AUTH_FAILED and route.credential_id is not None:
                    rejected.append(route.credential_id)
                # After text, past the cap, or once the whole call's time is spent: no other
                # attempt or route.
                if relayed or exc.code == ErrorCode.UPSTREAM_TOO_LARGE or loop.time() >= deadline:
                    yield CallEnded(route=route, usage=usage, error=exc, rejected_credentials=tuple(rejected))
                    return
                if not exc.retryable or attempt == attempts - 1:
                    break  # this route is done: fail over to the next one, if any
                delay = backoff_seconds(attempt, exc.retry_after)
                if loop.time() + delay >= deadline:
                    break  # no time left to wait for another attempt here
                logger.info("upstream %s on %s, retry %d in %.2fs", exc.code, route.route_name, attempt + 1, delay)
                await asyncio.sleep(delay)
        logger.info(
            "route %s failed (%s); %s",
            route.route_name,
            error.code if error else "",
            "failing over" if route is not routes[-1] else "no route left",
        )
    yield CallEnded(route=route, usage=None, error=error, rejected_credentials=tuple(rejected))


# A provider may overshoot max_tokens by a little (a tokenizer's edge, a tool call's framing);
# billing bounds a reported completion at max_tokens + this (billing's COMPLETION_BOUND_MARGIN).
REPLY_OVERSHOOT_TOKENS = 256
# No real reply takes more bytes a token than this (English is about 4, Chinese 3-6, a run
# of spaces in code 16 or so): a reply past (max_tokens + overshoot) x this came from a
# provider that ignored max_tokens, and is cut there (upstream_too_large), as LLM_MAX_REPLY_BYTES
# cuts any reply. Without it a student's own server (or a broken provider) could send
# megabytes for a 100-token hold.
REPLY_BYTES_PER_TOKEN_MAX = 32


class _ReplyTokens:
    """The reply's tokens (thinking, tool calls and text) against max_tokens + REPLY_OVERSHOOT_TOKENS, for a provider that
    ignores max_tokens with dense text (a byte a token: the byte cap lets 32 times too much
    through). A token is at least a byte, so text is only gathered until the reply could be
    past the cap, then counted a batch at a time: a reply that keeps to max_tokens costs an
    encode or two, not one a chunk."""

    __slots__ = ("cap", "counted", "model_name", "pending", "pending_bytes")

    def __init__(self, *, max_tokens: int | None, model_name: str) -> None:
        self.cap = max_tokens + REPLY_OVERSHOOT_TOKENS if max_tokens else None
        self.model_name = model_name
        self.counted = self.pending_bytes = 0
        self.pending: list[str] = []

    def over(self, text: str, size: int) -> bool:
        """Add a piece of the reply (`size` its bytes): True when the reply with it is past
        the cap, and the piece is then no part of it."""
        if self.cap is None:
            return False
        if self.counted + self.pending_bytes + size <= self.cap:
            self.pending.append(text)
            self.pending_bytes += size
            return False
        encoding = encoding_get(encoding_for_model(self.model_name)[0])
        tokens = len(encoding.encode("".join(self.pending) + text, disallowed_special=()))
        if self.counted + tokens > self.cap:
            return True
        self.counted += tokens
        self.pending.clear()
        self.pending_bytes = 0
        return False

    def fitting(self, text: str) -> str:
        """After `over` refused `text`: its longest beginning that keeps the reply within the
        cap (a reply that came in one piece, a whole JSON reply, is cut there, not dropped)."""
        if self.cap is None:
            return text
        encoding = encoding_get(encoding_for_model(self.model_name)[0])
        room = self.cap - self.counted - len(encoding.encode("".join(self.pending), disallowed_special=()))
        if room <= 0:
            return ""
        kept = encoding.decode_bytes(encoding.encode(text, disallowed_special=())[:room]).decode(errors="ignore")
        self.counted += room
        return kept


def reply_bytes_cap(max_tokens: int | None) -> int:
    """The most bytes of text and tool calls a reply asked for `max_tokens` may relay."""
    if not max_tokens:
        return settings.LLM_MAX_REPLY_BYTES
    return min(settings.LLM_MAX_REPLY_BYTES, (max_tokens + REPLY_OVERSHOOT_TOKENS) * REPLY_BYTES_PER_TOKEN_MAX)


async def _call(
    *,
    route: Route,
    messages: list[dict[str, Any]],
    max_tokens: int | None,
    params: dict[str, Any] | None,
    request_id: str,
    deadline: float,
) -> AsyncIterator[str | ToolCallsDelta | Reasoning | MayBill | _Accepted | _Finish | Usage]:
    """One attempt on one route: yields SENT as the request goes, _ACCEPTED once the
    provider answers 2xx, then text
    (str), tool call pieces, the finish reason and the reported Usage. Raises UpstreamError;
    a stream that ends without a finish reason, or breaks the protocol, is `upstream_dropped`
    after what arrived was yielded; text past reply_bytes_cap is cut there
    (`upstream_too_large`). A connection that breaks or goes quiet after the finish reason
    came ends a complete reply (what was missing is [DONE], or a usage report)."""
    extra = dict(params or {})
    if max_tokens and route.max_output_tokens:
        # A fallback may write less than the model asked for (a request for more is a 400).
        max_tokens = min(max_tokens, route.max_output_tokens)
    if max_tokens:
        extra[route.max_tokens_param] = max_tokens
    loop = asyncio.get_running_loop()
    idle = settings.LLM_IDLE_TIMEOUT
    # Reschedule the idle deadline only when it has drifted by this much: not a timer per chunk.
    slack = idle / 20
    cap = reply_bytes_cap(max_tokens)
    reply_tokens = _ReplyTokens(max_tokens=max_tokens, model_name=route.model_name)
    finished = received = False
    # The stream's end was clearly reached: the finish reason came in a chunk of its own (no
    # text: OpenAI's last `delta: {}`), or a usage report followed it. Some servers put a
    # finish reason on every chunk: for them a cut is still a cut.
    whole = False
    text_bytes = reasoning_bytes = 0
    try:
        async with asyncio.timeout_at(min(loop.time() + settings.LLM_FIRST_CHUNK_TIMEOUT, deadline)) as budget:
            body = {
                "model": route.model_name,
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
                **extra,
            }
            yield SENT
            try:
                response = await _chat_completion_stream(route, body, request_id=request_id)
            except openai.AuthenticationError:
                if not route.exchanges_token:
                    raise
                # The access token may have expired early or been revoked: fetch a new one
                # once and try again; a second 401 is the key's fault.
                response = await _chat_completion_stream(route, body, request_id=request_id, refresh_token=True)
            try:
                yield _ACCEPTED
                # A line whose end has not arrived yet (a piece may end anywhere): gathered in
                # one buffer, so a line trickled in many pieces costs time linear in its length.
                # The transport's caps bound a line (netguard._CappedBody).
                begun = bytearray()
                cr = False  # the last piece ended with CR: a line's end, or CRLF's first half
                data: list[bytes] = []
                # The body as the transport's caps read it (netguard._CappedBody, which also
                # decoded any content encoding): httpx's own iterators would only pass it on.
                body_stream = response.http_response.stream
                if not response.http_response.headers.get("content-type", "").startswith("text/event-stream"):
                    body_stream = _json_or_sse(body_stream)  # a server that ignored `stream`, or mislabels it
                async for raw in body_stream:
                    # SSE ends lines with LF, CRLF or CR alone: each becomes one LF.
                    if cr and raw.startswith(b"\n"):
                        raw = raw[1:]
                    cr = False
                    if b"\r" in raw:
                        cr = raw.endswith(b"\r")
                        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                    if b"\n" not in raw:
                        begun += raw
                        continue
                    if begun:
                        begun += raw
                        raw = bytes(begun)
                        begun.clear()
                    lines = raw.split(b"\n")
                    begun += lines.pop()
                    for line in lines:
                        if line.startswith(b"data:"):
                            data.append(line[6:] if line[5:6] == b" " else line[5:])
                            continue
                        if line or not data:
                            continue  # event:, id:, comments; or a blank line between events
                        payload = data[0] if len(data) == 1 else b"\n".join(data)
                        data = []
                        if payload == b"[DONE]":
                            continue
                        text, finish, usage, tool_calls, reasoning = _chunk_read(payload)
                        if not received:
                            received = True
                            budget.reschedule(min(loop.time() + idle, deadline))
                        elif budget.when() - loop.time() < idle - slack:
                            budget.reschedule(min(loop.time() + idle, deadline))
                        if finish:
                            finished = True
                            whole = not (text or tool_calls or reasoning)
                            yield _Finish(finish)
                        elif whole and (text or tool_calls or reasoning):
                            whole = False  # more came after the end (mid-stream: `whole` is False, nothing checked)
                        if usage is not None:
                            whole = whole or finished
                            yield usage
                        if reasoning:
                            # Thinking is billed as output, so max_tokens bounds it with the
                            # answer, as OpenAI's does (the hold is no larger). A provider whose
                            # max_tokens leaves the thinking out is cut where the hold ends.
                            size = len(reasoning.encode())
                            reasoning_bytes += size
                            if reasoning_bytes > settings.LLM_MAX_REPLY_BYTES:
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, "reasoning over the reply cap")
                            if reply_tokens.over(reasoning, size):
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, "thinking past max_tokens")
                            yield Reasoning(reasoning)
                        if tool_calls:
                            pieces = ToolCallsDelta(tool_calls)
                            size = len(pieces.text.encode())
                            text_bytes += size
                            if text_bytes > cap:
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, f"reply over {cap} bytes")
                            if reply_tokens.over(pieces.text, size):
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, "reply past max_tokens")
                            yield pieces
                        if text:
                            size = len(text) if text.isascii() else len(text.encode())
                            if text_bytes + size > cap:
                                # Keep what fits, in bytes and in tokens, then end the call:
                                # nothing past the caps is relayed, stored or billed.
                                kept = _text_cut_to_bytes(text, cap - text_bytes)
                                if kept and reply_tokens.over(kept, len(kept.encode())):
                                    kept = reply_tokens.fitting(kept)
                                if kept:
                                    yield kept
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, f"reply over {cap} bytes")
                            if reply_tokens.over(text, size):
                                kept = reply_tokens.fitting(text)
                                if kept:
                                    yield kept
                                raise UpstreamError(ErrorCode.UPSTREAM_TOO_LARGE, "reply past max_tokens")
                            text_bytes += size
                            yield text
            finally:
                await response.close()
    except (openai.APIError, httpx2.HTTPError, TimeoutError, ReplyRefused) as exc:
        error = upstream_error_from(exc)
        if whole and error.code in (
            ErrorCode.UPSTREAM_DROPPED,
            ErrorCode.UPSTREAM_UNREACHABLE,
            ErrorCode.UPSTREAM_TIMEOUT,
        ):
            return  # the reply was whole: only its end ([DONE], a usage report) went missing
        if received and error.code == ErrorCode.UPSTREAM_UNREACHABLE:
            # The connection broke after the stream had begun: a drop, not "unreachable".
            error = UpstreamError(ErrorCode.UPSTREAM_DROPPED, error.detail)
        raise error from None
    if not finished:
        raise UpstreamError(ErrorCode.UPSTREAM_DROPPED, "stream ended without a finish reason")


# ERNIE access tokens, per key, until shortly before they expire. Process-local: each
# worker fetches its own (a token is valid for weeks; the cost is one request per worker).
_access_tokens: dict[tuple[str, str], tuple[str, float]] = {}
TOKEN_EXPIRY_MARGIN = 300.0


def access_tokens_forget() -> None:
    """Drop the cached ERNIE access tokens (tests; a key's tokens also go with its digest)."""
    _access_tokens.clear()


def _token_cache_key(route: Route) -> tuple[str, str]:
    # Keyed by a digest of the key pair, so a replaced key never reuses an old token.
    return route.token_url, hashlib.sha256(f"{route.api_key}\0{route.secret_key}".encode()).hexdigest()


@sensitive_variables()  # the key pair (and the token) are locals here: never in an error report
async def ernie_access_token(route: Route, *, refresh: bool = False) -> str:
    """Exchange ERNIE's API Key + Secret Key for an access token (OAuth client credentials),
    cached until it expires. Raises UpstreamError."""
    key = _token_cache_key(route)
    # Two requests racing here both fetch a token: harmless, and a lock would not span event loops.
    cached = _access_tokens.get(key)
    if cached and not refresh and cached[1] > time.monotonic():
        return cached[0]
    params = {"grant_type": "client_credentials", "client_id": route.api_key, "client_secret": route.secret_key}
    timeout = httpx2.Timeout(settings.LLM_FIRST_CHUNK_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
    try:
        # The token URL comes from the catalog, not from a user; no redirects (they would
        # carry the secret in the query string elsewhere).
        async with http_client_for(user_supplied_url=False, timeout=timeout, follow_redirects=False) as http:
            response = await http.post(route.token_url, params=params)
    except httpx2.TimeoutException:
        raise UpstreamError(ErrorCode.UPSTREAM_TIMEOUT, "token endpoint", retryable=True) from None
    except httpx2.HTTPError as exc:
        raise UpstreamError(ErrorCode.UPSTREAM_UNREACHABLE, type(exc).__name__, retryable=True) from None
    except ReplyRefused as exc:
        raise UpstreamError(exc.code, "token endpoint") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code in (400, 401, 403) or (response.status_code == 200 and not token):
        raise UpstreamError(
            ErrorCode.UPSTREAM_AUTH_FAILED, f"token endpoint {response.status_code}", status=response.status_code
        )
    if response.status_code != 200:
        raise UpstreamError(
            ErrorCode.UPSTREAM_ERROR,
            f"token endpoint {response.status_code}",
            status=response.status_code,
            retryable=response.status_code >= 500,
        )
    lifetime = _token_count(body.get("expires_in")) or 3600  # seconds; a provider's odd value is not a crash
    _access_tokens[key] = (str(token), time.monotonic() + max(lifetime - TOKEN_EXPIRY_MARGIN, 1.0))
    return str(token)


async def _chat_completion_stream(
    route: Route, body: dict[str, Any], *, request_id: str, refresh_token: bool = False
) -> AsyncAPIResponse[Any]:
    """POST /chat/completions through the SDK (its auth, headers and error classes), the
    response left unread for the caller to stream. The body goes as it is: it was checked
    when the request was built (params.py), so the SDK's typed transform of every request
    (some 0.6 ms of CPU) is skipped, as `with_streaming_response` would not.

    The request's id is its idempotency key. Left to itself the SDK draws one from
    `os.urandom` for every request (and this client sends it to no provider): a system call
    that lets go of the GIL on the event loop, which then waited for the database threads,
    about 0.7 ms a turn with many students sending."""
    return await _sdk_client(route).post(
        "/chat/completions",
        body=body,
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
        options={
            "headers": {RAW_RESPONSE_HEADER: "stream", **await _authorization(route, refresh=refresh_token)},
            "idempotency_key": request_id,
        },
    )


@sensitive_variables("bearer")
async def _authorization(route: Route, *, refresh: bool = False) -> dict[str, str]:
    """The request's credentials, as a header for that request alone."""
    bearer = await ernie_access_token(route, refresh=refresh) if route.exchanges_token else route.api_key
    if bearer and not bearer.isascii():  # a key saved before keys were held to ASCII
        raise UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, "the key has characters an HTTP header cannot carry")
    return {"Authorization": f"Bearer {bearer or NO_KEY_PLACEHOLDER}"}


def _sdk_client(route: Route, *, checking: bool = False) -> AsyncOpenAI:
    """The SDK client for a route's base URL, on this process's pooled HTTP client: made
    once per pooled client, base URL and purpose (a turn, or `checking` a key), since making
    one (parsing its URL, reading the platform for its headers on a worker thread) cost a
    turn more CPU than sending the request. It holds no key: each request carries its own
    (_authorization). Never close it: that would close the pool."""
    http = http_client_shared(user_supplied_url=route.user_supplied_url)
    key = (id(http), route.base_url, checking)
    cached = _sdk_clients.get(key)
    if cached is not None and cached[0] is http:
        return cached[1]
    if len(_sdk_clients) >= SDK_CLIENTS_MAX:
        _sdk_clients.clear()  # base URLs typed by users could otherwise grow it without end
    timeout = (
        httpx2.Timeout(settings.CREDENTIAL_CHECK_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
        if checking
        else httpx2.Timeout(settings.LLM_IDLE_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
    )
    client = AsyncOpenAI(
        api_key=NO_KEY_PLACEHOLDER, base_url=route.base_url, max_retries=0, timeout=timeout, http_client=http
    )
    # The SDK reads the platform (its X-Stainless-OS header) on a worker thread before a new
    # client's first request; it is the process's, so it is read here, once.
    client._platform = _PLATFORM
    # It also takes an organization, a project, an admin key and extra headers from this
    # server's environment (OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_ADMIN_KEY,
    # OPENAI_CUSTOM_HEADERS): none of it is a provider's, and none of it goes to one, least
    # of all to a server a student typed.
    client.organization = client.project = client.admin_api_key = None
    client._custom_headers = {}
    _sdk_clients[key] = (http, client)
    return client


SDK_CLIENTS_MAX = 256
_sdk_clients: dict[tuple[int, str, bool], tuple[httpx2.AsyncClient, AsyncOpenAI]] = {}
_PLATFORM: Platform = get_platform()  # reads /etc/os-release once, at start-up


async def key_check(route: Route) -> str:
    """ "Test this key": list the models (free at every provider). Returns one of works,
    rejected, unreachable, rate_limited, error. Never includes the key."""
    try:
        client = _sdk_client(route, checking=True)
        await asyncio.wait_for(
            client.models.list(extra_headers=await _authorization(route)), timeout=settings.CREDENTIAL_CHECK_TIMEOUT
        )
    except (openai.APIError, httpx2.HTTPError, TimeoutError, UpstreamError, ReplyRefused) as exc:
        code = upstream_error_from(exc).code
        return {
            ErrorCode.UPSTREAM_AUTH_FAILED: "rejected",
            ErrorCode.UPSTREAM_RATE_LIMITED: "rate_limited",
            ErrorCode.UPSTREAM_UNREACHABLE: "unreachable",
            ErrorCode.UPSTREAM_TIMEOUT: "unreachable",
            ErrorCode.UPSTREAM_BLOCKED: "unreachable",
        }.get(code, "error")
    except Exception as exc:  # a reply the SDK cannot read as a model list ("hello", [], deep JSON)
        logger.warning("testing a key: %s reading the model list", type(exc).__name__)
        return "error"
    return "works"
