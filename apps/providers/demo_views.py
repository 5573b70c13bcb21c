"""The demo provider's OpenAI-compatible endpoint (/demo/v1/...).

Served by webchat itself and called through the openai SDK over HTTP exactly like any other
provider. It needs no key and no network.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from webchat.errors import BAD_JSON

from .demo import (
    DemoPrice,
    demo_caller_is_internal,
    demo_public_call_allowed,
    demo_reply_compose,
    demo_reply_pieces,
    demo_structured_reply,
    demo_tool_call,
)
from .models import ChatModel
from .selectors import model_price_at
from .tokens import count_prompt_tokens, text_cut_to_tokens


def _error(status: int, message: str, error_type: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": error_type, "code": None}}, status=status)


def _demo_price(model_name: str) -> DemoPrice | None:
    model = ChatModel.objects.filter(provider__is_demo=True, name=model_name).first()
    price = model_price_at(model_id=model.pk) if model else None
    if price is None:
        return None
    return DemoPrice(price.input_per_million, price.output_per_million, price.currency)


def _demo_model_names() -> list[str]:
    return list(ChatModel.objects.filter(provider__is_demo=True, enabled=True).values_list("name", flat=True))


def _parse(body: bytes) -> dict[str, Any] | JsonResponse:
    try:
        payload = json.loads(body or b"null")
    except BAD_JSON:
        return _error(400, "Request body is not valid JSON.")
    if not isinstance(payload, dict):
        return _error(400, "Request body must be a JSON object.")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty array.")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return _error(400, "Each message needs a 'role' and 'content'.")
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        return _error(400, "'model' is required.")
    if not isinstance(payload.get("stream_options") or {}, dict):
        return _error(400, "'stream_options' must be an object.")
    return payload


def _limited(request: HttpRequest) -> JsonResponse | None:
    """A public caller over its per-address limit gets OpenAI's 429 with Retry-After;
    webchat's own calls (the demo model, metered in the chat and on /v1) are not limited."""
    scheme, _space, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and demo_caller_is_internal(bearer=bearer.strip()):
        return None
    wait = demo_public_call_allowed(address=request.META.get("REMOTE_ADDR") or "unknown")
    if wait is None:
        return None
    response = JsonResponse(
        {
            "error": {
                "message": (
                    f"The public demo endpoint takes {settings.DEMO_PUBLIC_RPM} requests a minute from one address. "
                    f"Try again in {wait} s, or use webchat's /v1 with your own API key."
                ),
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    limited = await sync_to_async(_limited)(request)
    if limited is not None:
        return limited
    try:
        parsed = _parse(request.body)
    except RequestDataTooBig:
        return _error(400, "The request body is too large.")
    if isinstance(parsed, JsonResponse):
        return parsed
    model_name: str = parsed["model"]
    if model_name not in await sync_to_async(_demo_model_names)():
        return _error(404, f"The model '{model_name}' does not exist.", "not_found_error")
    messages = [
        {"role": str(m.get("role")), "content": m["content"] if isinstance(m.get("content"), str) else ""}
        for m in parsed["messages"]
    ]
    price = await sync_to_async(_demo_price)(model_name)
    prompt = count_prompt_tokens(messages=messages, model_name=model_name)
    call = demo_tool_call(messages=parsed["messages"], tools=parsed.get("tools"), tool_choice=parsed.get("tool_choice"))
    text = demo_reply_compose(messages=messages, model_name=model_name, price=price, prompt=prompt)
    if messages[-1]["role"] == "tool":
        text = f"The tool answered: {messages[-1]['content'][:300]}\n\n{text}"
    text = (
        demo_structured_reply(response_format=parsed.get("response_format"), text=text, messages=parsed["messages"])
        or text
    )
    max_tokens = parsed.get("max_completion_tokens") or parsed.get("max_tokens")
    # Honour max_tokens like a real model: cut the reply and say why.
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 1_000_000
    if call is not None:
        # A tool call is output too: max_tokens cuts its arguments, as a real model's
        # ("length", the arguments unfinished). Left whole, a max_tokens of 1 bought a call
        # of any length, billed past its hold.
        name, name_tokens, name_cut = text_cut_to_tokens(
            text=call["function"]["name"], model_name=model_name, max_tokens=limit
        )
        arguments, argument_tokens, cut = text_cut_to_tokens(
            text=call["function"]["arguments"], model_name=model_name, max_tokens=limit - name_tokens
        )
        call = {**call, "function": {**call["function"], "name": name, "arguments": arguments}}
        text, finish_reason = "", "length" if cut or name_cut else "tool_calls"
        completion_tokens = name_tokens + argument_tokens
    else:
        text, completion_tokens, cut = text_cut_to_tokens(text=text, model_name=model_name, max_tokens=limit)
        finish_reason = "length" if cut else "stop"
    usage = {"prompt_tokens": prompt.tokens, "completion_tokens": completion_tokens}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    completion_id = f"chatcmpl-demo-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    if not parsed.get("stream"):
        return JsonResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text or None, "tool_calls": [call]}
                        if call
                        else {"role": "assistant", "content": text},
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            }
        )

    include_usage = bool((parsed.get("stream_options") or {}).get("include_usage"))

    async def events() -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            body = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        delay = settings.DEMO_STREAM_DELAY_MS / 1000
        yield chunk({"role": "assistant", "content": ""}, None)
        if call is not None:
            # A tool call streams as OpenAI's does: id and name first, the arguments in pieces.
            head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
            yield chunk({"tool_calls": [head]}, None)
            arguments = call["function"]["arguments"]
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                if delay:
                    await asyncio.sleep(delay)
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None)
        for piece in demo_reply_pieces(text):
            if delay:
                await asyncio.sleep(delay)
            yield chunk({"content": piece}, None)
        yield chunk({}, finish_reason)
        if include_usage:
            body = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@require_GET
async def models_list(request: HttpRequest) -> JsonResponse:
    names = await sync_to_async(_demo_model_names)()
    return JsonResponse(
        {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "webchat-demo"} for name in names]}
    )
