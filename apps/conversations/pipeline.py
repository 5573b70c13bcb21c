"""The completion pipeline: the one place a chat request is served, whatever the entry point.

    1 authorize   who, which class, is the model allowed
    2 route       provider + model + credential
    3 reserve     billing hold (billing issue)
    4 call        openai SDK; retry before the first chunk only
    5 relay       deltas to the caller as they arrive
    6 settle      ledger entry from real usage (billing issue)
    7 persist     the reply, complete or partial, with its status

The caller hands in `relay`, an async callable taking protocol frames (frames.py), and a
`stop` event. Setting `stop` ends the upstream call; the partial reply is kept. If the
caller goes away (browser closed), it keeps calling `relay`, which may drop the frames:
the reply still completes, is saved and billed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classroom_allows_model, classroom_for_student, classroom_open_to_student
from apps.billing.selectors import quota_status
from apps.billing.services import QuotaRefused, hold_take, usage_reconcile
from apps.providers.client import Route, UpstreamError, Usage, chat_stream
from apps.providers.routes import NoRoute, routes_for_request
from apps.providers.selectors import chat_model_get_by_route_name
from apps.providers.services import credential_mark_failing
from apps.providers.tokens import TokenCount, count_prompt_tokens, count_text_tokens
from webchat.logs import request_id_set

from .errors import ChatError, upstream_message
from .frames import QuotaFrame, ServerFrame, quota_frame_from
from .models import Message
from .params import content_clean, conversation_id_clean, max_tokens_clean, model_clean, params_clean
from .rendering import reply_html
from .selectors import (
    conversation_get_for_user,
    conversation_prompt_history,
    conversation_prompt_history_before_last_question,
)
from .services import TurnOutcome, turn_begin, turn_finish

logger = logging.getLogger(__name__)


def _on_a_thread(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run a database step on a pool thread. Channels' default runs every such step of
    every socket in this process on one shared thread; turns of different students would
    then wait for each other to prepare and finish."""
    return DatabaseSyncToAsync(func, thread_sensitive=False)


Relay = Callable[[ServerFrame], Awaitable[None]]


@dataclass(frozen=True)
class ChatRequest:
    conversation_id: int | None
    model: str
    content: str
    entry_point: str = "chat"
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Answer the conversation's last question again (a new reply; the old one stays).
    regenerate: bool = False

    def __post_init__(self) -> None:
        """Entry points build a ChatRequest straight from what their caller sent (a frame, a
        request body): one that could not be served is refused here, with ChatError, before
        anything is written or sent. The fields hold the checked values (params.py)."""
        checked = {
            "conversation_id": conversation_id_clean(value=self.conversation_id),
            "model": model_clean(value=self.model),
            "content": content_clean(value=self.content),
            "max_tokens": max_tokens_clean(value=self.max_tokens),
            "params": params_clean(params=self.params),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # frozen: set once, while being built


@dataclass(frozen=True)
class PreparedTurn:
    conversation_id: int
    classroom_id: int | None
    reply_id: int
    request_id: str
    routes: list[Route]
    messages: list[dict[str, str]]
    max_tokens: int
    params: dict[str, Any]
    prompt: TokenCount  # counted for the hold, with the requested model's encoding

    @property
    def route(self) -> Route:
        return self.routes[0]


def turn_prepare(*, user: User, request: ChatRequest) -> PreparedTurn:
    """Steps 1-2 (and the turn's first write): authorize, route, record the question."""
    conversation = None
    if request.conversation_id is not None:
        try:
            conversation = conversation_get_for_user(user=user, conversation_id=request.conversation_id)
        except Http404:
            raise ChatError("not_found", _("That conversation does not exist.")) from None
        # A class's conversations go on only while the class is open and the student in it
        # (checked on every turn: a socket or a key may outlive an archive or a removal).
        if conversation.classroom_id is not None and not classroom_open_to_student(
                classroom_id=conversation.classroom_id, student=user):
            raise ChatError("class_closed", _("This conversation's class is archived, or you are no longer in it. "
                                              "Start a new conversation."))
    if request.regenerate:
        if conversation is None:
            raise ChatError("bad_request", _("Say which conversation to regenerate."))
        history, content = conversation_prompt_history_before_last_question(conversation=conversation)
        if content is None:
            raise ChatError("bad_request", _("There is no question to answer again."))
    else:
        content = request.content.strip()
        history = conversation_prompt_history(conversation=conversation) if conversation else []
    if not content:
        raise ChatError("bad_request", _("The message is empty."))
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise ChatError(
            "content_too_long",
            _("The message is too long (at most %(limit)d characters).") % {"limit": settings.CHAT_MAX_CONTENT_CHARS},
        )
    model = chat_model_get_by_route_name(route_name=request.model)
    classroom = conversation.classroom if conversation else classroom_for_student(user=user)
    if model is None or not classroom_allows_model(classroom=classroom, model=model):
        raise ChatError("model_not_allowed", _("That model is not available."))
    params = request.params  # checked when the request was built
    try:
        routes = routes_for_request(model=model, user=user, classroom=classroom)
    except NoRoute:
        raise ChatError("no_credential", _("There is no key for this model yet. Tell your teacher.")) from None
    class_limit = classroom.max_reply_tokens if classroom else None
    max_tokens = min(request.max_tokens or class_limit or settings.CHAT_DEFAULT_MAX_TOKENS,
                     class_limit or model.max_output_tokens, model.max_output_tokens)
    # The class instructions go first in every conversation (students see them on the page).
    instructions = [{"role": "system", "content": classroom.system_prompt}] if classroom and classroom.system_prompt else []
    messages = instructions + history + [{"role": "user", "content": content}]
    request_id = uuid.uuid4().hex
    prompt = count_prompt_tokens(messages=messages, model_name=model.name)
    # Step 3, reserve: the hold and the turn's first rows commit together or not at all.
    try:
        with transaction.atomic():
            hold_take(request_id=request_id, user=user, classroom=classroom, model=model,
                      prompt_tokens=prompt.tokens, max_tokens=max_tokens, entry_point=request.entry_point)
            rows = turn_begin(user=user, conversation=conversation, classroom=classroom, model=model,
                              content=content, request_id=request_id, ask_again=request.regenerate)
    except QuotaRefused as refused:
        raise ChatError(refused.code, refused.message, retry_after=refused.retry_after,
                        reset_at=refused.reset_at.isoformat() if refused.reset_at else None) from None
    return PreparedTurn(
        conversation_id=rows.conversation.pk,
        classroom_id=classroom.pk if classroom else None,
        reply_id=rows.reply.pk,
        request_id=request_id,
        routes=routes,
        messages=messages,
        max_tokens=max_tokens,
        params=params,
        prompt=prompt,
    )


def _quota_frame(*, user: User, classroom_id: int | None) -> QuotaFrame:
    """The student's meter after this turn, for the page to update without a reload."""
    classroom = Classroom.objects.filter(pk=classroom_id).first() if classroom_id else None
    return quota_frame_from(quota_status(user=user, classroom=classroom))


def _backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins, within a cap."""
    if retry_after is not None:
        return min(retry_after, settings.LLM_RETRY_AFTER_CAP)
    base = settings.LLM_BACKOFF_BASE * (2**attempt)
    return random.uniform(0, min(base, settings.LLM_RETRY_AFTER_CAP))


@dataclass
class _Reply:
    route: Route
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    first_chunk_ms: int | None = None
    error: UpstreamError | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _call_and_relay(*, turn: PreparedTurn, relay: Relay, reply: _Reply, started: float) -> None:
    """Steps 4-5. Each route is tried with retries, then the next route (failover), but
    only while nothing has reached the caller: after the first chunk a fault ends the reply."""
    attempts = max(settings.LLM_MAX_ATTEMPTS, 1)
    for route in turn.routes:
        reply.route = route
        for attempt in range(attempts):
            try:
                stream = chat_stream(route=route, messages=turn.messages, max_tokens=turn.max_tokens,
                                     params=turn.params)
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if event.text:
                            if reply.first_chunk_ms is None:
                                reply.first_chunk_ms = int((time.monotonic() - started) * 1000)
                            reply.parts.append(event.text)
                            await relay({"type": "chat.delta", "text": event.text})
                        if event.usage is not None:
                            reply.usage = event.usage
                reply.error = None
                return
            except UpstreamError as exc:
                reply.error = exc
                if exc.code == "upstream_auth_failed" and route.credential_id is not None:
                    await _on_a_thread(credential_mark_failing)(
                        credential_id=route.credential_id, error=exc.code)
                if reply.parts:
                    return
                if not exc.retryable or attempt == attempts - 1:
                    break  # this route is done: fail over to the next one, if any
                delay = _backoff_seconds(attempt, exc.retry_after)
                logger.info("upstream %s on %s, retry %d in %.2fs", exc.code, route.route_name, attempt + 1, delay)
                await asyncio.sleep(delay)
        logger.info("route %s failed (%s); %s", route.route_name, reply.error.code if reply.error else "",
                    "failing over" if route is not turn.routes[-1] else "no route left")


def _outcome(*, turn: PreparedTurn, reply: _Reply, status: str, started: float) -> TurnOutcome:
    estimated, review = False, ""
    if reply.usage is None and status == Message.Status.FAILED:
        # Nothing was produced: the provider bills nothing, and neither do we.
        prompt_tokens = completion_tokens = 0
        source = Message.UsageSource.COUNTED
    else:
        # Our own count, to bill when the provider reports none (stopped early, dropped, or
        # it never reports) and to check its report against when it does.
        model_name = reply.route.model_name
        # Counted once already for the hold; again only if failover changed the model.
        prompt = (turn.prompt if model_name == turn.route.model_name
                  else count_prompt_tokens(messages=turn.messages, model_name=model_name))
        completion = count_text_tokens(text=reply.text, model_name=model_name)
        prompt_tokens, completion_tokens = prompt.tokens, completion.tokens if reply.parts else 0
        source, estimated = Message.UsageSource.COUNTED, prompt.estimated
        if reply.usage is not None:
            billed = usage_reconcile(reported_prompt=reply.usage.prompt_tokens,
                                     reported_completion=reply.usage.completion_tokens, counted_prompt=prompt_tokens,
                                     counted_completion=completion_tokens, estimated=completion.estimated)
            prompt_tokens, completion_tokens = billed.prompt_tokens, billed.completion_tokens
            source, review = billed.usage_source, billed.usage_review
            estimated = estimated and source == Message.UsageSource.COUNTED
    return TurnOutcome(
        content=reply.text,
        status=status,
        route_name=reply.route.route_name,
        provider_slug=reply.route.provider_slug,
        model_id=reply.route.model_id,
        credential_scope=reply.route.credential_scope,
        credential_id=reply.route.credential_id,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        usage_source=source,
        estimated=estimated,
        error_code=reply.error.code if reply.error else "",
        first_chunk_ms=reply.first_chunk_ms,
        total_ms=int((time.monotonic() - started) * 1000),
        usage_review=review,
    )


async def completion_run(*, user: User, request: ChatRequest, relay: Relay, stop: asyncio.Event) -> Message | None:
    """Serve one chat request end to end.

    Side effects: Conversation/Message rows (turn_begin, turn_finish); frames sent through
    `relay`. Raises ChatError (nothing written) when the request is refused.
    """
    started = time.monotonic()
    turn = await _on_a_thread(turn_prepare)(user=user, request=request)
    request_id_set(turn.request_id)  # this task's log lines carry the turn's id
    await relay({"type": "chat.started", "conversation": turn.conversation_id, "message": turn.reply_id})

    reply = _Reply(route=turn.route)
    # The upstream call runs as its own task so a stop can cancel it wherever it waits
    # (connecting, or between chunks) while this function goes on to save what arrived.
    call = asyncio.create_task(_call_and_relay(turn=turn, relay=relay, reply=reply, started=started))
    stop_wait = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({call, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    crash: BaseException | None = None
    if not call.done():
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        status = Message.Status.STOPPED
    else:
        crash = call.exception()
        if crash is not None:
            # A bug, not an upstream fault: keep what arrived, label it, then let it surface.
            reply.error = UpstreamError("internal_error")
        if reply.error is not None:
            status = Message.Status.INTERRUPTED if reply.parts else Message.Status.FAILED
        else:
            status = Message.Status.COMPLETE

    # Counting tokens and rendering Markdown take CPU: off the event loop, which every
    # other socket of this process is waiting on.
    outcome = await asyncio.to_thread(_outcome, turn=turn, reply=reply, status=status, started=started)
    message = await _on_a_thread(turn_finish)(reply_id=turn.reply_id, request_id=turn.request_id,
                                              outcome=outcome)
    quota = await _on_a_thread(_quota_frame)(user=user, classroom_id=turn.classroom_id)

    if status == Message.Status.FAILED:
        code = reply.error.code if reply.error else "upstream_error"
        await relay({"type": "chat.error", "code": code,
                     "message": upstream_message(code=code, credential_scope=reply.route.credential_scope),
                     "quota": quota})
    else:
        frame: ServerFrame = {
            "type": "chat.done",
            "message": message.pk,
            "status": status,
            # What was billed (settling bounds absurd counts), not what the provider claimed.
            "usage": {"prompt_tokens": message.prompt_tokens or 0, "completion_tokens": message.completion_tokens or 0},
            "model": outcome.route_name,
            "first_chunk_ms": outcome.first_chunk_ms,
            "cost": str(message.cost.normalize()) if message.cost is not None else None,
            "html": await asyncio.to_thread(reply_html, message.content),
            "currency": message.currency,
            "quota": quota,
        }
        if reply.error is not None:
            frame["error_code"] = reply.error.code
            frame["error"] = upstream_message(code=reply.error.code, credential_scope=reply.route.credential_scope)
        await relay(frame)
    if crash is not None:
        raise crash
    return message
