"""The OpenAI-compatible /v1 endpoints: a second entry point to the completion pipeline.

Thin: read the key and the body, build a ChatRequest, turn the pipeline's events into
OpenAI's JSON or SSE chunks, and every refusal into OpenAI's error body
`{"error": {"message", "type", "param", "code"}}` with the status the SDK maps to its
exception classes. Messages follow the request's language (LocaleMiddleware:
Accept-Language, zh-hans by default).

The caller's `messages` go to the pipeline as they are (checked there, params.py), after
the class's instructions; tools are passed through to models that take them. An API call
is not a chat conversation: its record is its ledger row (entry point `api`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from apps.accounts.selectors import classroom_for_student
from apps.conversations.errors import upstream_message
from apps.conversations.params import max_tokens_clean
from apps.conversations.pipeline import (
    ChatRequest,
    Delta,
    Event,
    Finished,
    Refused,
    Started,
    completion_run,
    model_unavailable,
)
from apps.providers.selectors import chat_models_offered_to
from webchat.errors import BAD_JSON, ErrorCode, RequestRefused
from webchat.threads import off_the_loop

from .idempotency import Recorded, body_hash, idempotent_claim, idempotent_forget, idempotent_record
from .selectors import api_key_user

# Body fields that would change where or how a request is sent: never honoured, always refused.
ROUTING_PARAMS = ("api_base", "base_url", "api_key", "extra_headers", "user_id", "organization", "project")
# Fields read here; everything else goes to the pipeline's parameter checks (params.py).
HANDLED = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n"}
# Fields about the caller's own bookkeeping that change nothing about the reply: accepted, not sent on.
IGNORED = {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}

# status, OpenAI error type, OpenAI code (None: our own code is the code)
_REFUSALS: dict[str, tuple[int, str, str | None]] = {
    ErrorCode.INVALID_API_KEY: (401, "invalid_request_error", "invalid_api_key"),
    ErrorCode.SIGNED_OUT: (401, "invalid_request_error", "invalid_api_key"),
    ErrorCode.MODEL_NOT_ALLOWED: (404, "invalid_request_error", "model_not_found"),
    ErrorCode.NOT_FOUND: (404, "invalid_request_error", None),
    ErrorCode.BAD_REQUEST: (400, "invalid_request_error", None),
    ErrorCode.CONTENT_TOO_LONG: (400, "invalid_request_error", None),
    ErrorCode.CONTEXT_TOO_LONG: (400, "invalid_request_error", None),
    ErrorCode.CLASS_CLOSED: (403, "permission_denied", None),
    ErrorCode.API_ACCESS_OFF: (403, "permission_denied", None),
    ErrorCode.NO_CREDENTIAL: (503, "api_error", None),
    ErrorCode.MODEL_UNPRICED: (503, "api_error", None),
    ErrorCode.QUOTA_EXCEEDED: (429, "insufficient_quota", "insufficient_quota"),
    ErrorCode.RATE_LIMITED: (429, "requests", "rate_limit_exceeded"),
    # As OpenAI answers a request over its tokens-per-minute limit ("Request too large").
    ErrorCode.REQUEST_TOO_LARGE: (429, "tokens", "rate_limit_exceeded"),
    ErrorCode.IDEMPOTENCY_IN_PROGRESS: (409, "invalid_request_error", None),
    ErrorCode.UNKNOWN_URL: (404, "invalid_request_error", None),
    ErrorCode.METHOD_NOT_ALLOWED: (405, "invalid_request_error", None),
}
# Upstream faults: the gateway between the caller and the provider failed (502), the provider
# cannot take it now (503), or did not answer in time (504). The code is the stable upstream one.
_UPSTREAM_STATUS: dict[str, int] = {
    ErrorCode.UPSTREAM_TIMEOUT: 504,
    ErrorCode.UPSTREAM_RATE_LIMITED: 503,
    ErrorCode.UPSTREAM_UNREACHABLE: 503,
}


def _error_body(*, message: Promise | str, error_type: str, code: str | None, param: str | None) -> dict[str, Any]:
    return {"error": {"message": str(message), "type": error_type, "param": param, "code": code}}


def _refusal_response(error: RequestRefused) -> JsonResponse:
    status, error_type, code = _REFUSALS.get(error.code, (400, "invalid_request_error", None))
    message = error.message
    if error.code == ErrorCode.MODEL_NOT_ALLOWED:
        listed = _("The models this key may use: GET /v1/models.")
        message = f"{message} {listed}"
    if error.rate_limit is not None:
        error_type = error.rate_limit  # OpenAI's type for a minute's limit: "requests" or "tokens"
    response = JsonResponse(
        _error_body(message=message, error_type=error_type, code=code or str(error.code), param=error.param),
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    retry_after = _retry_after(error)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    if error.code == ErrorCode.REQUEST_TOO_LARGE:
        response["x-should-retry"] = "false"  # the SDK would retry a 429: it would meet the same answer
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="webchat"'
    return response


def _retry_after(error: RequestRefused) -> int | None:
    if error.retry_after is not None:
        return max(1, int(error.retry_after))
    if error.reset_at is not None:
        return max(1, math.ceil((error.reset_at - timezone.now()).total_seconds()))
    return None


def _upstream_body(finished: Finished) -> dict[str, Any]:
    code = str(finished.error.code) if finished.error else str(ErrorCode.UPSTREAM_ERROR)
    message = upstream_message(code=code, credential_scope=finished.outcome.usage.credential_scope)
    return _error_body(message=message, error_type="api_error", code=code, param=None)


# Upstream faults that the same request, sent again, meets again.
_UPSTREAM_FINAL = {ErrorCode.UPSTREAM_REJECTED, ErrorCode.UPSTREAM_AUTH_FAILED, ErrorCode.UPSTREAM_BLOCKED}


def _billed(finished: Finished) -> bool:
    """Whether a request that failed upstream was billed: the provider was asked and
    answered in part (what arrived is billed), or a usage report came."""
    usage = finished.outcome.usage
    return bool(usage.prompt_tokens or usage.completion_tokens)


def _upstream_response(finished: Finished) -> JsonResponse:
    code = finished.error.code if finished.error else ""
    response = JsonResponse(
        _upstream_body(finished), status=_UPSTREAM_STATUS.get(code, 502), json_dumps_params={"ensure_ascii": False}
    )
    if code in _UPSTREAM_FINAL or _billed(finished):
        # The openai SDK retries a 5xx twice by itself: never one that cannot succeed, nor
        # one already billed (each retry would be billed again). `x-should-retry` is its switch.
        response["x-should-retry"] = "false"
    return response


def _asked(request: HttpRequest) -> str:
    return f"{request.method} {request.path}"[:300]


def _only(method: str) -> Callable[[Callable[..., Awaitable[HttpResponse]]], Callable[..., Awaitable[HttpResponse]]]:
    """Django's require_GET / require_POST, answering a wrong method as OpenAI does: 405
    with an error body the SDK can show (Django's answer has none)."""

    def decorate(view: Callable[..., Awaitable[HttpResponse]]) -> Callable[..., Awaitable[HttpResponse]]:
        @functools.wraps(view)
        async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                response = _refusal_response(
                    RequestRefused(
                        ErrorCode.METHOD_NOT_ALLOWED,
                        _("Invalid method for URL (%(asked)s).") % {"asked": _asked(request)},
                    )
                )
                response["Allow"] = method
                return response
            return await view(request, *args, **kwargs)

        return checked

    return decorate


@csrf_exempt
async def unknown_url(request: HttpRequest) -> HttpResponse:
    """Any other /v1 path (a library's default of /v1/responses or /v1/completions, say):
    404 in OpenAI's error body, naming what this server offers, instead of an HTML page the
    SDK would show as its error message."""
    message = _(
        "Invalid URL (%(asked)s). This server offers POST /v1/chat/completions, GET /v1/models and "
        "GET /v1/models/{model}."
    ) % {"asked": _asked(request)}
    return _refusal_response(RequestRefused(ErrorCode.UNKNOWN_URL, message))


def _presented_key(request: HttpRequest) -> str | None:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _bad(message: Promise | str, param: str | None) -> RequestRefused:
    return RequestRefused(ErrorCode.BAD_REQUEST, message, param=param)


@sensitive_variables("presented")
def _models_for(*, presented: str | None) -> list[str]:
    user = api_key_user(presented=presented)
    classroom = classroom_for_student(user=user)
    return [model.route_name for model in chat_models_offered_to(user=user, classroom=classroom)]


@csrf_exempt
@_only("GET")
@sensitive_variables("presented")
async def models_list(request: HttpRequest) -> HttpResponse:
    try:
        names = await off_the_loop(_models_for)(presented=_presented_key(request))
    except RequestRefused as error:
        return _refusal_response(error)
    return JsonResponse({"object": "list", "data": [_model_object(name) for name in names]})


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": name.split("/", 1)[0]}


@csrf_exempt
@_only("GET")
@sensitive_variables("presented")
async def model_retrieve(request: HttpRequest, model: str) -> HttpResponse:
    """GET /v1/models/{model} (the SDK's models.retrieve): one of this key's models, else
    404 model_not_found, as for a chat request naming it."""
    try:
        names = await off_the_loop(_models_for)(presented=_presented_key(request))
    except RequestRefused as error:
        return _refusal_response(error)
    if model not in names:
        return _refusal_response(model_unavailable(model))
    return JsonResponse(_model_object(model))


def _chat_request(body: bytes) -> tuple[ChatRequest, bool, bool]:
    """The ChatRequest, whether to stream, and whether usage was asked for in its own chunk."""
    try:
        payload = json.loads(body or b"null")
    except BAD_JSON:
        raise _bad(_("The request body is not valid JSON."), None) from None
    if not isinstance(payload, dict):
        raise _bad(_("The request body must be a JSON object."), None)
    for name in ROUTING_PARAMS:
        if name in payload:
            raise _bad(_("Unsupported parameter: %(name)s.") % {"name": name}, name)
    n = payload.get("n")
    if n is not None and (type(n) is not int or n != 1):  # True and 1.0 are not 1 here, as at OpenAI
        raise _bad(_("Only n=1 is supported."), "n")
    if payload.get("logprobs") or payload.get("top_logprobs"):  # false and 0 ask for none
        raise _bad(_("logprobs are not supported."), "logprobs")
    stream = payload.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad(_("'stream' must be true or false."), "stream")
    options = payload.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool | None):
        raise _bad(_("'stream_options' must be an object whose include_usage is true or false."), "stream_options")
    max_tokens_param = "max_completion_tokens" if payload.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = max_tokens_clean(value=payload.get(max_tokens_param), param=max_tokens_param)
    params = {
        name: value
        for name, value in payload.items()
        if name not in HANDLED and name not in IGNORED and name not in ("logprobs", "top_logprobs")
    }
    if payload.get("messages") is None:
        raise _bad(_("'messages' must be a non-empty array."), "messages")
    request = ChatRequest(
        conversation_id=None,
        model=payload.get("model"),  # type: ignore[arg-type]  # checked by ChatRequest
        messages=payload["messages"],
        entry_point="api",
        max_tokens=max_tokens,  # checked above, under the name the caller sent it
        params=params,
    )
    return request, stream, bool(options.get("include_usage"))


def _usage(finished: Finished) -> dict[str, int]:
    """What was billed (settling bounds absurd counts), as the student's usage page shows it."""
    prompt, completion = finished.billed or (
        finished.outcome.usage.prompt_tokens,
        finished.outcome.usage.completion_tokens,
    )
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@sensitive_variables("presented")
def _claim(*, presented: str | None, key: str, request_hash: str) -> int | Recorded:
    """The key's owner, then the Idempotency-Key claimed for them (one trip to the database)."""
    return idempotent_claim(user=api_key_user(presented=presented), key=key, request_hash=request_hash)


def _replayed(recorded: Recorded) -> HttpResponse:
    response = HttpResponse(recorded.body, status=recorded.status_code, content_type=recorded.content_type)
    response["Idempotent-Replayed"] = "true"
    if recorded.status_code >= 400:
        # Only faults that were billed (or a first request stopped half-way) are kept: the
        # same answer would come again, so the SDK is told not to retry it by itself.
        response["x-should-retry"] = "false"
    return response


class _Record:
    """What a request with an Idempotency-Key answered, kept for its retries (no key: nothing)."""

    def __init__(self, claim_id: int | None) -> None:
        self.claim_id = claim_id
        self.started = False  # the pipeline's Started came: the provider is being asked

    async def keep(self, response: HttpResponse | str, *, status: int = 200, content_type: str = "") -> None:
        if self.claim_id is None:
            return
        claim_id, self.claim_id = self.claim_id, None
        if isinstance(response, HttpResponse):
            body, status, content_type = response.content.decode(), response.status_code, response["Content-Type"]
        else:
            body = response
        await asyncio.shield(
            off_the_loop(idempotent_record)(claim_id=claim_id, status_code=status, content_type=content_type, body=body)
        )

    async def forget(self) -> None:
        if self.claim_id is not None:
            claim_id, self.claim_id = self.claim_id, None
            await asyncio.shield(off_the_loop(idempotent_forget)(claim_id=claim_id))


@csrf_exempt
@_only("POST")
@sensitive_variables("presented")  # the caller's key: never in an error report
async def chat_completions(request: HttpRequest) -> HttpResponse:
    presented = _presented_key(request)
    try:
        body = request.body
    except RequestDataTooBig:
        body = None
    try:
        if body is None:
            raise _bad(_("The request body is too large."), "messages")
        chat = _chat_request(body)
    except RequestRefused as error:
        # A bad key is answered first, whatever the body: a caller without one learns nothing more.
        try:
            await off_the_loop(api_key_user)(presented=presented)
        except RequestRefused as key_error:
            return _refusal_response(key_error)
        return _refusal_response(error)
    chat_request, stream, usage_chunk = chat
    record = _Record(None)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None:
        try:
            claim = await off_the_loop(_claim)(presented=presented, key=idempotency_key, request_hash=body_hash(body))
        except RequestRefused as error:
            return _refusal_response(error)
        if isinstance(claim, Recorded):
            return _replayed(claim)
        record = _Record(claim)
    try:
        return await _served(chat_request, presented=presented, stream=stream, usage_chunk=usage_chunk, record=record)
    except BaseException:
        # Cancelled (the client went away) or a bug: the pipeline saved and billed what it
        # could; the claim records that the first request did not finish. Gone before the
        # provider was asked, it cost nothing: a retry may run afresh.
        if record.started:
            await record.keep(_stopped_response())
        else:
            await record.forget()
        raise


def _stopped_response() -> JsonResponse:
    return JsonResponse(
        _error_body(
            message=_(
                "The first request with this Idempotency-Key was stopped before it finished and was billed for what "
                "it produced. Send a new key to ask again."
            ),
            error_type="invalid_request_error",
            code="idempotent_request_stopped",
            param=None,
        ),
        status=409,
        json_dumps_params={"ensure_ascii": False},
    )


@sensitive_variables("presented")
async def _served(
    chat_request: ChatRequest, *, presented: str | None, stream: bool, usage_chunk: bool, record: _Record
) -> HttpResponse:
    events = completion_run(identify=lambda: api_key_user(presented=presented), request=chat_request)
    first = await anext(events)
    if isinstance(first, Refused):
        await events.aclose()
        await record.forget()  # nothing was written: a retry may run afresh
        return _refusal_response(first.error)
    assert isinstance(first, Started)  # the pipeline's first event is Refused or Started
    record.started = True
    completion_id = f"chatcmpl-{first.request_id}"
    created = int(time.time())
    if stream:
        # The response starts with the reply: a fault before its first piece (a provider
        # busy, down or refusing, after the retries and fallbacks) is answered with its
        # status, as OpenAI does and as the request not streamed is, so the SDK raises the
        # same exception class (and retries what may be retried). After it, an error event.
        following = await anext(events)
        if isinstance(following, Finished) and following.error is not None:
            await events.aclose()
            return await _failed(following, record=record)
        response = StreamingHttpResponse(
            _sse(
                following,
                events,
                completion_id=completion_id,
                created=created,
                model=chat_request.model,
                usage_chunk=usage_chunk,
                record=record,
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    parts: list[str] = []
    calls = _ToolCalls()
    finished: Finished | None = None
    async for event in events:
        if isinstance(event, Delta):
            parts.append(event.text)
            if event.tool_calls:
                calls.add(event.tool_calls)
        elif isinstance(event, Finished):
            finished = event
    assert finished is not None
    if finished.error is not None:
        return await _failed(finished, record=record)
    text = "".join(parts)
    message: dict[str, Any] = {"role": "assistant", "content": (text or None) if calls else text, "refusal": None}
    if calls:
        message["tool_calls"] = calls.whole()
    response = JsonResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": finished.outcome.usage.route_name or chat_request.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(finished, calls=bool(calls)),
                }
            ],
            "usage": _usage(finished),
        },
        json_dumps_params={"ensure_ascii": False},
    )
    await record.keep(response)
    return response


async def _failed(finished: Finished, *, record: _Record) -> JsonResponse:
    """A request the provider failed before its reply began (or, not streamed, at all)."""
    response = _upstream_response(finished)
    if _billed(finished):
        await record.keep(response)
    else:
        await record.forget()  # a fault that cost nothing (a provider busy or down): a retry may run afresh
    return response


class _ToolCalls:
    """Tool calls put together from their streamed pieces, by index (a non-streamed reply)."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.calls)

    def add(self, pieces: list[dict[str, Any]]) -> None:
        for piece in pieces:
            call = self.calls.setdefault(
                piece["index"], {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = piece.get("id") or call["id"]
            function = piece.get("function", {})
            call["function"]["name"] += function.get("name", "")
            call["function"]["arguments"] += function.get("arguments", "")

    def whole(self) -> list[dict[str, Any]]:
        return [self.calls[index] for index in sorted(self.calls)]


def _finish_reason(finished: Finished, *, calls: bool) -> str:
    """The provider's finish reason; one that sent none (or stopped) says stop, or
    tool_calls when the reply is tool calls."""
    if finished.finish_reason in ("stop", "length", "tool_calls", "content_filter", "function_call"):
        return finished.finish_reason
    return "tool_calls" if calls else "stop"


def _sse_data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _then(first: Event, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield first
    async for event in events:
        yield event


async def _sse(
    first: Event,
    events: AsyncIterator[Event],
    *,
    completion_id: str,
    created: int,
    model: str,
    usage_chunk: bool,
    record: _Record,
) -> AsyncIterator[str]:
    """OpenAI's chunk stream, from the reply's first event on: a role chunk, a chunk per
    delta (text or tool call pieces), a closing chunk with the finish reason, usage (in a
    chunk of its own when stream_options.include_usage asked for it, else on the closing
    chunk), then [DONE]. A fault after the reply began is an error event. With an
    Idempotency-Key, the whole stream is kept for retries; a stream its client left is kept
    as far as it went, with an error event saying it was stopped."""
    sent: list[str] | None = [] if record.claim_id is not None else None

    def out(text: str) -> str:
        if sent is not None:
            sent.append(text)
        return text

    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return out(_sse_data({**head, "choices": choices, **extra}))

    # The hot path, a chunk of text: everything around the text encoded once per request
    # (JSON encodes a dict as its parts in order, so the bytes are chunk()'s).
    marker = "\x00"
    around = json.dumps(
        {**head, "choices": [{"index": 0, "delta": {"content": marker}, "finish_reason": None}]}, ensure_ascii=False
    )
    text_before, text_after = around.rsplit(json.dumps(marker), 1)  # the content comes last
    text_before, text_after = "data: " + text_before, text_after + "\n\n"

    calls = False
    finished = False
    unbilled_fault = False
    try:
        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        async for event in _then(first, events):
            if type(event) is Delta and event.text and not event.tool_calls:
                yield out(text_before + json.dumps(event.text, ensure_ascii=False) + text_after)
            elif isinstance(event, Delta):
                delta: dict[str, Any] = {"content": event.text} if event.text else {}
                if event.tool_calls:
                    delta["tool_calls"] = event.tool_calls
                    calls = True
                yield chunk([{"index": 0, "delta": delta, "finish_reason": None}])
            elif isinstance(event, Finished):
                finished = True
                if event.error is not None:
                    unbilled_fault = not _billed(event)
                    yield out(_sse_data(_upstream_body(event)))
                    return
                closing = [{"index": 0, "delta": {}, "finish_reason": _finish_reason(event, calls=calls)}]
                if usage_chunk:
                    yield chunk(closing)
                    yield chunk([], usage=_usage(event))
                else:
                    yield chunk(closing, usage=_usage(event))
        yield out("data: [DONE]\n\n")
    finally:
        # A caller that went away: the pipeline saves and bills what arrived as stopped.
        await events.aclose()  # type: ignore[attr-defined]
        if unbilled_fault:
            await record.forget()  # as for a request not streamed
        elif sent is not None:
            if not finished:
                sent.append(_sse_data(json.loads(_stopped_response().content)))
            await record.keep("".join(sent), content_type="text/event-stream")
