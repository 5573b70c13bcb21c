"""The OpenAI-compatible /v1 endpoints: a second entry point to the completion pipeline.

Thin: read the key and the body, build a ChatRequest, turn the pipeline's events into
OpenAI's JSON or SSE chunks, and every refusal into OpenAI's error body
`{"error": {"message", "type", "param", "code"}}` with the status the SDK maps to its
exception classes. Messages follow the request's language (LocaleMiddleware:
Accept-Language, zh-hans by default).

Limit of this slice: the pipeline takes one question (plus the class's instructions), so
`messages` must be a single user message; earlier turns and a caller's own system message
are refused with 400 (param "messages"), not silently dropped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.selectors import classroom_for_student
from apps.conversations.errors import upstream_message
from apps.conversations.pipeline import ChatRequest, Delta, Event, Finished, Refused, Started, completion_run
from apps.providers.selectors import chat_models_offered_to
from webchat.errors import ErrorCode, RequestRefused
from webchat.threads import off_the_loop

from .selectors import api_key_user

# Body fields that would change where or how a request is sent: never honoured, always refused.
ROUTING_PARAMS = ("api_base", "base_url", "api_key", "extra_headers", "user_id", "organization", "project")
# Fields read here; everything else goes to the pipeline's parameter checks (params.py).
HANDLED = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n", "user"}

# status, OpenAI error type, OpenAI code (None: our own code is the code)
_REFUSALS: dict[str, tuple[int, str, str | None]] = {
    ErrorCode.INVALID_API_KEY: (401, "invalid_request_error", "invalid_api_key"),
    ErrorCode.SIGNED_OUT: (401, "invalid_request_error", "invalid_api_key"),
    ErrorCode.MODEL_NOT_ALLOWED: (404, "invalid_request_error", "model_not_found"),
    ErrorCode.NOT_FOUND: (404, "invalid_request_error", None),
    ErrorCode.BAD_REQUEST: (400, "invalid_request_error", None),
    ErrorCode.CONTENT_TOO_LONG: (400, "invalid_request_error", None),
    ErrorCode.CLASS_CLOSED: (403, "permission_denied", None),
    ErrorCode.NO_CREDENTIAL: (503, "api_error", None),
    ErrorCode.QUOTA_EXCEEDED: (429, "insufficient_quota", "insufficient_quota"),
    ErrorCode.RATE_LIMITED: (429, "requests", "rate_limit_exceeded"),
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
    response = JsonResponse(
        _error_body(message=error.message, error_type=error_type, code=code or str(error.code), param=error.param),
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    retry_after = _retry_after(error)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
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


def _upstream_response(finished: Finished) -> JsonResponse:
    status = _UPSTREAM_STATUS.get(finished.error.code if finished.error else "", 502)
    return JsonResponse(_upstream_body(finished), status=status, json_dumps_params={"ensure_ascii": False})


def _presented_key(request: HttpRequest) -> str | None:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _bad(message: Promise | str, param: str | None) -> RequestRefused:
    return RequestRefused(ErrorCode.BAD_REQUEST, message, param=param)


def _models_for(*, presented: str | None) -> list[str]:
    user = api_key_user(presented=presented)
    classroom = classroom_for_student(user=user)
    return [model.route_name for model in chat_models_offered_to(user=user, classroom=classroom)]


@csrf_exempt
@require_GET
async def models_list(request: HttpRequest) -> HttpResponse:
    try:
        names = await off_the_loop(_models_for)(presented=_presented_key(request))
    except RequestRefused as error:
        return _refusal_response(error)
    data = [{"id": name, "object": "model", "created": 0, "owned_by": name.split("/", 1)[0]} for name in names]
    return JsonResponse({"object": "list", "data": data})


def _question(messages: object) -> str:
    """The one user message the pipeline can answer (see the module's docstring)."""
    if not isinstance(messages, list) or not messages:
        raise _bad(_("'messages' must be a non-empty array."), "messages")
    if len(messages) != 1 or not isinstance(messages[0], dict) or messages[0].get("role") != "user":
        raise _bad(
            _("This API answers one user message at a time: send 'messages' with a single message whose role is user."),
            "messages",
        )
    content = messages[0].get("content")
    if isinstance(content, list):  # content parts: text only
        if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
            raise _bad(_("Only text content is supported."), "messages")
        content = "".join(str(part.get("text", "")) for part in content)
    if not isinstance(content, str):
        raise _bad(_("The message's content must be text."), "messages")
    return content


def _chat_request(body: bytes) -> tuple[ChatRequest, bool, bool]:
    """The ChatRequest, whether to stream, and whether usage was asked for in its own chunk."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise _bad(_("The request body is not valid JSON."), None) from None
    if not isinstance(payload, dict):
        raise _bad(_("The request body must be a JSON object."), None)
    for name in ROUTING_PARAMS:
        if name in payload:
            raise _bad(_("Unsupported parameter: %(name)s.") % {"name": name}, name)
    if payload.get("n", 1) != 1:
        raise _bad(_("Only n=1 is supported."), "n")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad(_("'stream' must be true or false."), "stream")
    options = payload.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad(_("'stream_options' must be an object."), "stream_options")
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
    params = {name: value for name, value in payload.items() if name not in HANDLED}
    request = ChatRequest(
        conversation_id=None,
        model=payload.get("model"),  # type: ignore[arg-type]  # checked by ChatRequest
        content=_question(payload.get("messages")),
        entry_point="api",
        max_tokens=max_tokens,
        params=params,
    )
    return request, stream, bool(options.get("include_usage"))


def _usage(finished: Finished) -> dict[str, int]:
    usage = finished.outcome.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    presented = _presented_key(request)
    try:
        chat = _chat_request(request.body)
    except RequestRefused as error:
        # A bad key is answered first, whatever the body: a caller without one learns nothing more.
        try:
            await off_the_loop(api_key_user)(presented=presented)
        except RequestRefused as key_error:
            return _refusal_response(key_error)
        return _refusal_response(error)
    chat_request, stream, usage_chunk = chat
    events = completion_run(identify=lambda: api_key_user(presented=presented), request=chat_request)
    first = await anext(events)
    if isinstance(first, Refused):
        await events.aclose()
        return _refusal_response(first.error)
    assert isinstance(first, Started)  # the pipeline's first event is Refused or Started
    completion_id = f"chatcmpl-{first.request_id}"
    created = int(time.time())
    if stream:
        response = StreamingHttpResponse(
            _sse(
                events, completion_id=completion_id, created=created, model=chat_request.model, usage_chunk=usage_chunk
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    parts: list[str] = []
    finished: Finished | None = None
    async for event in events:
        if isinstance(event, Delta):
            parts.append(event.text)
        elif isinstance(event, Finished):
            finished = event
    assert finished is not None
    if finished.error is not None:
        return _upstream_response(finished)
    return JsonResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": finished.outcome.usage.route_name or chat_request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(parts), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(finished),
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _sse_data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(
    events: AsyncIterator[Event], *, completion_id: str, created: int, model: str, usage_chunk: bool
) -> AsyncIterator[str]:
    """OpenAI's chunk stream: a role chunk, a chunk per delta, a closing chunk with the finish
    reason, usage (in a chunk of its own when stream_options.include_usage asked for it, else
    on the closing chunk), then [DONE]. A fault after the start is an error event."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return _sse_data({**head, "choices": choices, **extra})

    try:
        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        async for event in events:
            if isinstance(event, Delta):
                yield chunk([{"index": 0, "delta": {"content": event.text}, "finish_reason": None}])
            elif isinstance(event, Finished):
                if event.error is not None:
                    yield _sse_data(_upstream_body(event))
                    return
                closing = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
                if usage_chunk:
                    yield chunk(closing)
                    yield chunk([], usage=_usage(event))
                else:
                    yield chunk(closing, usage=_usage(event))
        yield "data: [DONE]\n\n"
    finally:
        # A caller that went away: the pipeline saves and bills what arrived as stopped.
        await events.aclose()  # type: ignore[attr-defined]
