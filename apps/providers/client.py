"""The LLM client: one streamed chat completion over the openai SDK.

Every provider is OpenAI-compatible, the built-in demo included, so there is exactly one
code path. Faults are turned into `UpstreamError` with a stable code; the pipeline decides
what to retry (only before the first chunk reached the user).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from django.conf import settings
from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

# Without a key the SDK refuses to build a client; servers that need none ignore it.
NO_KEY_PLACEHOLDER = "no-key"


@dataclass(frozen=True)
class Route:
    """Where one request goes: provider + model + key. `api_key` never leaves this object
    except in the Authorization header; `repr` hides it."""

    model_id: int
    provider_slug: str
    model_name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    credential_id: int | None = None
    credential_scope: str = "none"

    @property
    def route_name(self) -> str:
        return f"{self.provider_slug}/{self.model_name}"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class StreamEvent:
    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class UpstreamError(Exception):
    """A provider fault. `code` is stable and shown to users; `retryable` says whether trying
    again (before anything reached the user) may help."""

    def __init__(self, code: str, detail: str = "", *, status: int | None = None,
                 retryable: bool = False, retry_after: float | None = None) -> None:
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
        return max(float(value), 0.0)
    except ValueError:
        return None


def upstream_error_from(exc: BaseException) -> UpstreamError:
    """Map SDK and transport exceptions to our codes. Never include request headers (the
    key) in the detail: only the status and the provider's own error text."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, openai.RateLimitError):
        return UpstreamError("upstream_rate_limited", "429", status=429, retryable=True,
                             retry_after=_retry_after_seconds(exc.response))
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return UpstreamError("upstream_auth_failed", str(exc.status_code), status=exc.status_code)
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
        return UpstreamError("upstream_error" if retryable else "upstream_rejected", str(exc.status_code),
                             status=exc.status_code, retryable=retryable,
                             retry_after=_retry_after_seconds(exc.response))
    if isinstance(exc, (openai.APITimeoutError, TimeoutError, httpx2.TimeoutException)):
        return UpstreamError("upstream_timeout", "timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("upstream_unreachable", type(exc.__cause__ or exc).__name__, retryable=True)
    if isinstance(exc, (httpx2.HTTPError, openai.APIError)):
        return UpstreamError("upstream_dropped", type(exc).__name__)
    raise exc


async def chat_stream(*, route: Route, messages: list[dict[str, Any]], max_tokens: int | None,
                      params: dict[str, Any] | None = None) -> AsyncIterator[StreamEvent]:
    """Stream one chat completion. Yields text deltas, then (when the provider reports it)
    the usage. Raises `UpstreamError`; a stream that ends without a finish reason is
    reported as `upstream_dropped` after what arrived was yielded."""
    timeout = httpx2.Timeout(settings.LLM_IDLE_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
    client = AsyncOpenAI(api_key=route.api_key or NO_KEY_PLACEHOLDER, base_url=route.base_url,
                         max_retries=0, timeout=timeout)
    extra = dict(params or {})
    if max_tokens:
        extra["max_tokens"] = max_tokens
    finished = False
    received = False
    deadline = time.monotonic() + settings.LLM_TOTAL_TIMEOUT
    try:
        async with asyncio.timeout(settings.LLM_TOTAL_TIMEOUT):
            stream = await asyncio.wait_for(
                client.chat.completions.create(model=route.model_name, messages=messages, stream=True,
                                               stream_options={"include_usage": True}, **extra),
                timeout=settings.LLM_FIRST_CHUNK_TIMEOUT,
            )
            chunks = stream.__aiter__()
            wait = settings.LLM_FIRST_CHUNK_TIMEOUT
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), timeout=min(wait, deadline - time.monotonic()))
                except StopAsyncIteration:
                    break
                wait = settings.LLM_IDLE_TIMEOUT
                received = True
                usage = None
                if chunk.usage is not None:
                    usage = Usage(prompt_tokens=chunk.usage.prompt_tokens or 0,
                                  completion_tokens=chunk.usage.completion_tokens or 0)
                text, finish = "", None
                for choice in chunk.choices or []:
                    text += (choice.delta.content or "") if choice.delta else ""
                    finish = choice.finish_reason or finish
                if finish:
                    finished = True
                if text or usage or finish:
                    yield StreamEvent(text=text, usage=usage, finish_reason=finish)
    except (openai.APIError, httpx2.HTTPError, TimeoutError) as exc:
        error = upstream_error_from(exc)
        if received and error.code == "upstream_unreachable":
            # The connection broke after the stream had begun: a drop, not "unreachable".
            error = UpstreamError("upstream_dropped", error.detail)
        raise error from None
    finally:
        await client.close()
    if not finished:
        raise UpstreamError("upstream_dropped", "stream ended without a finish reason")
