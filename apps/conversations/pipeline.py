"""The completion pipeline: the one place a chat request is served, whatever the entry point.

`completion_run` is an async generator of events and knows nothing of its callers (no
websocket, HTML or SSE here). It reads as its steps:

    prepare (one trip to a database thread)
      1 authorize   who (the entry point's `identify`), which class, is the model allowed
      2 route       provider + model + credential (own -> class -> site), failover routes
      3 reserve     the billing hold, sized from the counted prompt + max_tokens
    4 call        providers' `stream`: pooled clients, retries, failover, timeouts, size cap
    5 relay       a Delta event per piece of text (nothing is written per chunk)
    finish (one trip to a database thread)
      6 settle      the ledger row from real, sanity-checked usage
      7 persist     the reply, complete or partial, with its status

Events: Refused (nothing was written) | Started, Delta*, Finished. Setting `stop` ends the
call; what arrived is saved and billed (`stopped`). A caller that goes away simply stops
iterating, or cancels its task: the reply is still saved as `stopped`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classroom_for_student, classroom_get_open_to_student
from apps.billing.selectors import QuotaStatus, limits_for, quota_status
from apps.billing.services import ReplyUsage, hold_take, usage_reconcile
from apps.providers import client as providers
from apps.providers.client import CallEnded, MayBill, Reasoning, Route, ToolCallsDelta, UpstreamError
from apps.providers.routes import NoRoute, routes_for_request
from apps.providers.selectors import chat_model_get_by_route_name, classroom_allows_model, classroom_compares
from apps.providers.services import credential_mark_failing
from apps.providers.tokens import TokenCount, count_prompt_tokens, count_text_tokens
from webchat.errors import ErrorCode, RequestRefused
from webchat.logs import request_id_set
from webchat.threads import off_the_loop

from .models import Conversation, Message
from .params import (
    content_clean,
    conversation_id_clean,
    max_tokens_clean,
    message_id_clean,
    messages_clean,
    model_clean,
    params_clean,
)
from .selectors import BranchRow, conversation_branch, conversation_get_for_turn, prompt_history
from .services import TurnOutcome, request_settle, turn_begin, turn_finish

logger = logging.getLogger(__name__)


# Who is asking: run by prepare on its database thread. Returns the user, or raises
# RequestRefused (a session that ended, a revoked key). Each entry point brings its own.
Identify = Callable[[], User]


@dataclass(frozen=True)
class ChatRequest:
    """One request, from either entry point.

    The chat page sends one question (`content`) in a conversation of ours (`conversation_id`,
    None: a new one), and the turn is saved in it. The API sends the whole conversation
    (`messages`, OpenAI's format), and nothing but the ledger row is saved: API calls are
    not chat conversations. Tools are the API's only."""

    conversation_id: int | None
    model: str
    content: str = ""
    entry_point: str = "chat"
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Answer a question again: a new version of its reply; the old one stays.
    regenerate: bool = False
    # Put `content` in place of a question: a new version of it, and a reply; the old stay.
    edit: bool = False
    # A message of the conversation's: for a new question, the message it follows; to
    # regenerate, the question (or a reply of it) answered again; to edit, the question
    # replaced. None: the latest message's branch (an edit must say).
    message_id: int | None = None
    messages: list[dict[str, Any]] | None = None

    @property
    def tools_allowed(self) -> bool:
        return self.entry_point == "api"

    def __post_init__(self) -> None:
        """Entry points build a ChatRequest straight from what their caller sent (a frame, a
        request body): one that could not be served is refused here, with RequestRefused, before
        anything is written or sent. The fields hold the checked values (params.py)."""
        checked = {
            "conversation_id": conversation_id_clean(value=self.conversation_id),
            "model": model_clean(value=self.model),
            "content": content_clean(value=self.content),
            "message_id": message_id_clean(value=self.message_id),
            "max_tokens": max_tokens_clean(value=self.max_tokens),
            "params": params_clean(params=self.params, tools_allowed=self.tools_allowed),
            "messages": messages_clean(value=self.messages, tools_allowed=self.tools_allowed),
        }
        if checked["messages"] is not None and (
            checked["conversation_id"] is not None or self.regenerate or self.edit or checked["message_id"] is not None
        ):
            raise ValueError("a request brings its own messages or goes on a conversation, not both")
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # frozen: set once, while being built


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refused:
    """The request was refused before anything was written or called."""

    error: RequestRefused


@dataclass(frozen=True, slots=True)
class Started:
    conversation_id: int | None  # None: an API request, saved in no conversation
    reply_id: int | None
    request_id: str
    question_id: int | None = None  # the question the turn wrote (None: none, or an API request)


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    tool_calls: list[dict[str, Any]] | None = None  # pieces of tool calls, OpenAI's delta format


@dataclass(frozen=True, slots=True)
class Finished:
    """The reply as saved and billed. `message` is the saved reply (None: an API request,
    recorded only in the ledger); `error` the fault that ended it (None: complete or
    stopped); `finish_reason` the provider's (stop, length, tool_calls...; None when it sent
    none); `quota` the user's budget after it."""

    message: Message | None
    outcome: TurnOutcome
    error: UpstreamError | None
    quota: QuotaStatus
    finish_reason: str | None = None
    # (prompt, completion) tokens as the ledger billed them: the outcome's, bounded when
    # settling (absurd reported counts). None: settling failed (the outcome is all there is).
    billed: tuple[int, int] | None = None


Event = Refused | Started | Delta | Finished


# --- prepare: steps 1-3 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedTurn:
    user: User
    conversation_id: int | None
    classroom: Classroom | None
    reply_id: int | None
    request_id: str
    routes: list[Route]
    messages: list[dict[str, Any]]
    max_tokens: int
    params: dict[str, Any]
    prompt: TokenCount  # counted for the hold, with the requested model's encoding
    question_id: int | None = None  # the question this turn wrote (None: regenerate, or the API)

    @property
    def route(self) -> Route:
        return self.routes[0]


def turn_prepare(*, identify: Identify, request: ChatRequest) -> PreparedTurn:
    """Steps 1-3, on one database thread: authorize, route, reserve, and (chat) record the
    question and an empty reply (the hold and the rows commit together or not at all)."""
    # 1 authorize
    user = identify()
    conversation = None
    content = ""
    parent_id: int | None = None  # the message the new question (or, regenerating, reply) follows
    if request.messages is not None:
        history = request.messages  # the API's own conversation, checked when the request was built
    else:
        if request.conversation_id is not None:
            conversation = _conversation_open(user=user, conversation_id=request.conversation_id)
        content, history, parent_id = _asked(request=request, conversation=conversation)
        if not content:
            raise RequestRefused(ErrorCode.BAD_REQUEST, _("The message is empty."), param="content")
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise RequestRefused(
            ErrorCode.CONTENT_TOO_LONG,
            _("The message is too long (at most %(limit)d characters).") % {"limit": settings.CHAT_MAX_CONTENT_CHARS},
        )
    model = chat_model_get_by_route_name(route_name=request.model)
    classroom = conversation.classroom if conversation else classroom_for_student(user=user)
    if model is None or not classroom_allows_model(classroom=classroom, model=model):
        raise model_unavailable(request.model)
    if "tools" in request.params and not model.supports_tools:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("This model does not take tools."), param="tools")
    # 2 route
    try:
        routes = routes_for_request(model=model, user=user, classroom=classroom)
    except NoRoute:
        raise RequestRefused(
            ErrorCode.NO_CREDENTIAL, _("There is no key for this model yet. Tell your teacher.")
        ) from None
    class_limit = classroom.max_reply_tokens if classroom else None
    # max_tokens bounds the thinking too (it is billed as output, and counted against the cut):
    # a reply nobody asked a length for, from a reasoning model (the requested one or a
    # fallback that may answer), is held room for all it may write. Each route is asked for
    # no more than its own model writes (client._call); the hold covers the most of them.
    most = max((route.max_output_tokens or model.max_output_tokens) for route in routes)
    thinking = [route.max_output_tokens or most for route in routes if route.thinks]
    default_max_tokens = max(thinking) if thinking else settings.CHAT_DEFAULT_MAX_TOKENS
    max_tokens = min(request.max_tokens or class_limit or default_max_tokens, class_limit or most, most)
    # The class instructions go first in every conversation (students see them on the page).
    instructions = (
        [{"role": "system", "content": classroom.system_prompt}] if classroom and classroom.system_prompt else []
    )
    question = [{"role": "user", "content": content}] if request.messages is None else []
    messages = instructions + history + question
    request_id = uuid.uuid4().hex
    prompt = count_prompt_tokens(messages=messages, model_name=model.name, besides=_read_besides(request.params))
    if prompt.tokens >= model.context_window:
        too_long = (
            _("The messages are longer than this model can read (%(window)d tokens).")
            if request.messages is not None
            else _("This conversation is now longer than the model can read (%(window)d tokens). Start a new one.")
        )
        raise RequestRefused(ErrorCode.CONTEXT_TOO_LONG, too_long % {"window": model.context_window}, param="messages")
    max_tokens = min(max_tokens, model.context_window - prompt.tokens)
    # A reply nobody asked a length for (the chat; an API call without max_tokens) is held to
    # what a minute's token limit can hold with its question: else it could never be sent.
    tpm = limits_for(user=user, classroom=classroom).tpm
    if tpm is not None and request.max_tokens is None and prompt.tokens < tpm:
        max_tokens = min(max_tokens, tpm - prompt.tokens)
    # 3 reserve: the hold and the turn's first rows commit together or not at all (a
    # refused hold, quota_exceeded or rate_limited, goes to the caller as it is).
    with transaction.atomic():
        hold_take(
            request_id=request_id,
            user=user,
            classroom=classroom,
            model=model,
            prompt_tokens=prompt.tokens,
            max_tokens=max_tokens,
            entry_point=request.entry_point,
            # Every model that may answer: the requested one may have no key, and a fallback answer.
            fallback_model_ids=tuple(route.model_id for route in routes),
        )
        rows = (
            None
            if request.messages is not None
            else turn_begin(
                user=user,
                conversation=conversation,
                classroom=classroom,
                model=model,
                content=content,
                request_id=request_id,
                ask_again=request.regenerate,
                parent_id=parent_id,
            )
        )
    return PreparedTurn(
        user=user,
        conversation_id=rows.conversation.pk if rows else None,
        classroom=classroom,
        reply_id=rows.reply.pk if rows else None,
        request_id=request_id,
        routes=routes,
        messages=messages,
        max_tokens=max_tokens,
        params=request.params,  # checked when the request was built
        prompt=prompt,
        question_id=rows.user_message.pk if rows and rows.user_message else None,
    )


def model_unavailable(model: str) -> RequestRefused:
    """A model that does not exist, or that this user may not use: named, as OpenAI names it
    (the lesson's code asks for gpt-4o-mini, which a class may not have)."""
    return RequestRefused(
        ErrorCode.MODEL_NOT_ALLOWED,
        _("The model “%(model)s” does not exist or is not available to you.") % {"model": model},
        param="model",
    )


def _read_besides(params: dict[str, Any]) -> dict[str, Any] | None:
    """What the model reads besides the messages: the tools' definitions, the response
    format's schema (counted into the prompt, and so into the hold)."""
    return {name: params[name] for name in ("tools", "tool_choice", "response_format") if name in params} or None


def _conversation_open(*, user: User, conversation_id: int) -> Conversation:
    """The user's conversation, while it may go on. A class's conversations go on only while
    the class is open and the student in it, and one begun in no class only while the
    student is still in none (checked on every turn: a socket or a key may outlive an
    archive, a removal or a join)."""
    try:
        conversation = conversation_get_for_turn(user=user, conversation_id=conversation_id)
    except Http404:
        raise RequestRefused(ErrorCode.NOT_FOUND, _("That conversation does not exist.")) from None
    if conversation.classroom_id is not None:
        classroom = classroom_get_open_to_student(classroom_id=conversation.classroom_id, student=user)
        if classroom is None:
            raise RequestRefused(
                ErrorCode.CLASS_CLOSED,
                _("This conversation's class is archived, or you are no longer in it. Start a new conversation."),
            )
        conversation.classroom = classroom  # read with the check: not read again
    elif classroom_for_student(user=user) is not None:
        # Begun while the student was in no class (before joining, after a removal, or its
        # class deleted): going on with it would escape the class's models, quota and
        # instructions.
        raise RequestRefused(
            ErrorCode.CLASS_CLOSED,
            _("This conversation is not part of your class. Start a new conversation."),
        )
    return conversation


def _asked(*, request: ChatRequest, conversation: Conversation | None) -> tuple[str, list[dict[str, Any]], int | None]:
    """What a chat turn asks: the question, the history the model is shown before it (the
    branch it follows) and the message it follows. A new question goes after the named
    message (else the latest branch); regenerate answers a question again; edit puts new
    text in place of a question."""
    if not (request.regenerate or request.edit):
        content = request.content.strip()
        branch = _branch(conversation=conversation, at=request.message_id, descend=False) if conversation else []
        return content, prompt_history(branch=branch), branch[-1].id if branch else None
    if conversation is None:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("Say which conversation."), param="conversation")
    if request.edit and request.message_id is None:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("Say which question to edit."), param="message")
    # The branch down to the very message named (not on to its latest reply).
    branch = _branch(conversation=conversation, at=request.message_id, descend=request.message_id is None)
    if request.regenerate:
        while branch and branch[-1].role != Message.Role.USER:  # a reply: its question
            branch.pop()
        if not branch:
            raise RequestRefused(ErrorCode.BAD_REQUEST, _("There is no question to answer again."))
        content, parent_id = branch[-1].content, branch[-1].id
    else:
        # Only a question of the student's own (the conversation is theirs): not a reply.
        if not branch or branch[-1].id != request.message_id or branch[-1].role != Message.Role.USER:
            raise RequestRefused(ErrorCode.NOT_FOUND, _("That question does not exist."), param="message")
        content, parent_id = request.content.strip(), branch[-1].parent_id
    return content, prompt_history(branch=branch[:-1]), parent_id


def _branch(*, conversation: Conversation, at: int | None, descend: bool) -> list[BranchRow]:
    try:
        return conversation_branch(conversation=conversation, at=at, descend=descend)
    except Http404:
        raise RequestRefused(ErrorCode.NOT_FOUND, _("That message does not exist."), param="message") from None


# --- finish: steps 6-7 ---------------------------------------------------------------------------


@dataclass
class _Reply:
    """What the call brought back, gathered as it streams."""

    route: Route
    parts: list[str] = field(default_factory=list)
    tool_parts: list[str] = field(default_factory=list)  # the tool calls' names and arguments
    reasoning_parts: list[str] = field(default_factory=list)  # a reasoning model's thinking: billed, not shown
    ended: CallEnded | None = None
    first_chunk_ms: int | None = None
    status: str = Message.Status.COMPLETE
    # The provider may bill the prompt (providers.MayBill): a request was sent, and not every
    # one so far refused. A turn stopped before the first was sent, or while a 429 is waited
    # out, costs nothing: no provider bills a refused request.
    called: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def error(self) -> UpstreamError | None:
        return self.ended.error if self.ended else None


def _outcome(*, turn: PreparedTurn, reply: _Reply, started: float) -> TurnOutcome:
    """The usage to bill: the provider's report checked against our own count."""
    usage = reply.ended.usage if reply.ended else None
    estimated, review, counted_completion = False, "", 0
    if usage is None and (reply.status == Message.Status.FAILED or not reply.called):
        # Nothing was produced, or nothing asked: the provider bills nothing, and neither do we.
        prompt_tokens = completion_tokens = 0
        source = Message.UsageSource.COUNTED
    else:
        # Our own count, to bill when the provider reports none (stopped early, dropped, or
        # it never reports) and to check its report against when it does.
        model_name = reply.route.model_name
        # Counted once already for the hold; again only if failover changed the model.
        prompt = (
            turn.prompt
            if model_name == turn.route.model_name
            else count_prompt_tokens(messages=turn.messages, model_name=model_name, besides=_read_besides(turn.params))
        )
        produced = reply.text + "".join(reply.tool_parts) + "".join(reply.reasoning_parts)
        completion = count_text_tokens(text=produced, model_name=model_name)
        prompt_tokens, completion_tokens = prompt.tokens, completion.tokens if produced else 0
        counted_completion = completion_tokens
        source, estimated = Message.UsageSource.COUNTED, prompt.estimated
        if usage is not None:
            billed = usage_reconcile(
                reported_prompt=usage.prompt_tokens,
                reported_completion=usage.completion_tokens,
                counted_prompt=prompt_tokens,
                counted_completion=completion_tokens,
                estimated=completion.estimated,
            )
            prompt_tokens, completion_tokens = billed.prompt_tokens, billed.completion_tokens
            source, review = billed.usage_source, billed.usage_review
            estimated = estimated and source == Message.UsageSource.COUNTED
    error = reply.error
    return TurnOutcome(
        content=reply.text,
        error_code=error.code if error else "",
        usage=ReplyUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_source=source,
            estimated=estimated,
            status=reply.status,
            route_name=reply.route.route_name,
            provider_slug=reply.route.provider_slug,
            credential_id=reply.route.credential_id,
            credential_scope=reply.route.credential_scope,
            first_chunk_ms=reply.first_chunk_ms,
            total_ms=int((time.monotonic() - started) * 1000),
            model_id=reply.route.model_id,
            usage_review=review,
            counted_completion_tokens=counted_completion,
        ),
    )


def turn_close(*, turn: PreparedTurn, reply: _Reply, started: float) -> Finished:
    """Steps 6-7, on one database thread: count, settle the hold into the ledger and (chat)
    save the reply, in one transaction (turn_finish; an API request has only its ledger
    row, request_settle); mark keys the provider rejected; read the budget after it.
    Counting tokens takes CPU: here, off the event loop every socket shares."""
    outcome = _outcome(turn=turn, reply=reply, started=started)
    message = None
    billed: tuple[int, int] | None = None
    if turn.reply_id is None:
        entry = request_settle(request_id=turn.request_id, outcome=outcome)
        billed = (entry.prompt_tokens, entry.completion_tokens) if entry is not None else None
    else:
        message = turn_finish(reply_id=turn.reply_id, request_id=turn.request_id, outcome=outcome)
        if message.prompt_tokens is not None and message.completion_tokens is not None:
            billed = (message.prompt_tokens, message.completion_tokens)
    for credential_id in reply.ended.rejected_credentials if reply.ended else ():
        credential_mark_failing(credential_id=credential_id, error=ErrorCode.UPSTREAM_AUTH_FAILED)
    quota = quota_status(user=turn.user, classroom=turn.classroom)
    finish_reason = reply.ended.finish_reason if reply.ended and reply.status == Message.Status.COMPLETE else None
    return Finished(
        message=message, outcome=outcome, error=reply.error, quota=quota, finish_reason=finish_reason, billed=billed
    )


class _StopSwitch:
    """Turns a set `stop` event into the end of the call. While the pipeline waits for the
    provider, the waiting task is cancelled (the call ends at once); while it is handing an
    event to its caller, `requested` is checked when it comes back. No timer or task per
    chunk: one watcher per turn."""

    def __init__(self, stop: asyncio.Event | None) -> None:
        self.task = asyncio.current_task()
        self.waiting = False
        self.requested = False
        self.cancelled = False
        self.watch = None
        if stop is not None and stop.is_set():
            self.requested = True  # stopped before the call began: it never does
        elif stop is not None:
            self.watch = asyncio.ensure_future(stop.wait())
            self.watch.add_done_callback(self._fire)

    def _fire(self, watch: asyncio.Future[Any]) -> None:
        if watch.cancelled():
            return
        self.requested = True
        if self.waiting and self.task is not None:
            self.cancelled = True
            self.task.cancel()

    def close(self) -> None:
        if self.watch is not None:
            self.watch.cancel()


async def completion_run(
    *, identify: Identify, request: ChatRequest, stop: asyncio.Event | None = None
) -> AsyncIterator[Event]:
    """Serve one chat request end to end, as events.

    Side effects: the hold, Conversation/Message rows (prepare), the ledger row and the
    saved reply (finish). Yields Refused (nothing written) or Started, Delta..., Finished.
    """
    started = time.monotonic()
    try:
        [turn] = await _prepared(lambda: [turn_prepare(identify=identify, request=request)], started=started)
    except RequestRefused as error:
        yield Refused(error)
        return
    async for event in _prepared_run(turn=turn, started=started, stop=stop):
        yield event


async def _prepared(prepare: Callable[[], list[PreparedTurn]], *, started: float) -> list[PreparedTurn]:
    """Steps 1-3 on a database thread. A caller that goes away meanwhile (its task
    cancelled) cannot stop the thread: its turns are prepared all the same, then closed at
    once as stopped, unbilled (the provider was never asked), so no hold is left open."""
    preparing = asyncio.ensure_future(off_the_loop(prepare)())
    try:
        return await asyncio.shield(preparing)
    except asyncio.CancelledError:
        await asyncio.shield(_abandoned(preparing, started=started))
        raise


async def _abandoned(preparing: asyncio.Future[list[PreparedTurn]], *, started: float) -> None:
    try:
        turns = await preparing
    except RequestRefused:
        return  # nothing was written
    except Exception:
        logger.exception("preparing a turn its caller had left failed")
        return
    for turn in turns:
        reply = _Reply(route=turn.route, status=Message.Status.STOPPED)
        await off_the_loop(turn_close)(turn=turn, reply=reply, started=started)


# --- comparisons: one question, several models at once ----------------------------------------

MAX_LANES = 4


def comparison_prepare(*, identify: Identify, requests: list[ChatRequest]) -> list[PreparedTurn]:
    """Steps 1-3 for every lane, on one database thread and in one transaction: each lane is
    its own conversation, reply and hold, and if any lane is refused (a model the class does
    not allow, a quota that cannot hold them all, a class whose teacher switched comparing
    off) none is written."""
    user = identify()
    if not classroom_compares(classroom=classroom_for_student(user=user)):
        raise RequestRefused(ErrorCode.COMPARE_OFF, _("Your teacher has switched comparing models off for your class."))
    turns: list[PreparedTurn] = []
    with transaction.atomic():
        for request in requests:
            try:
                turns.append(turn_prepare(identify=lambda: user, request=request))
            except RequestRefused as refused:
                if refused.code != ErrorCode.QUOTA_EXCEEDED or not turns:
                    raise
                # The first lanes' holds, taken in this same (rolled back) transaction, are
                # not "replies still being written": say what the comparison as a whole needs.
                raise RequestRefused(
                    ErrorCode.QUOTA_EXCEEDED,
                    _(
                        "Together these %(n)d replies could use more than your quota has left. "
                        "Compare fewer models, or ask for shorter replies."
                    )
                    % {"n": len(requests)},
                    reset_at=refused.reset_at,
                ) from None
    return turns


async def comparison_run(
    *,
    identify: Identify,
    requests: list[ChatRequest],
    stop: asyncio.Event | None = None,
    lane_stops: list[asyncio.Event] | None = None,
) -> AsyncIterator[tuple[int, Event]]:
    """Serve one question to several models at once, as (lane, event) pairs: each lane's
    events are those of completion_run, the lanes' interleaved as they arrive. Refused up
    front (lane 0, nothing written) unless every lane can be served. Setting `stop` stops
    every lane, setting `lane_stops[i]` (one per request, when given) lane i alone; each is
    saved and billed for what arrived."""
    started = time.monotonic()
    try:
        turns = await _prepared(lambda: comparison_prepare(identify=identify, requests=requests), started=started)
    except RequestRefused as error:
        yield 0, Refused(error)
        return
    queue: asyncio.Queue[tuple[int, Event] | None] = asyncio.Queue()

    async def lane(index: int, turn: PreparedTurn) -> None:
        try:
            own = lane_stops[index] if lane_stops is not None else stop
            async for event in _prepared_run(turn=turn, started=started, stop=own):
                await queue.put((index, event))
        finally:
            await queue.put(None)

    tasks = [asyncio.ensure_future(lane(index, turn)) for index, turn in enumerate(turns)]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()  # a caller that went away: each lane saves what arrived, as stopped
        await asyncio.gather(*tasks, return_exceptions=True)


async def _prepared_run(*, turn: PreparedTurn, started: float, stop: asyncio.Event | None) -> AsyncIterator[Event]:
    """Steps 4-7 of a prepared turn: call, relay, settle, persist."""
    request_id_set(turn.request_id)  # this task's log lines carry the turn's id
    reply = _Reply(route=turn.route)
    switch = _StopSwitch(stop)
    finished = False
    try:
        yield Started(
            conversation_id=turn.conversation_id,
            reply_id=turn.reply_id,
            request_id=turn.request_id,
            question_id=turn.question_id,
        )
        # 4 call, 5 relay
        call = providers.stream(
            routes=turn.routes,
            messages=turn.messages,
            max_tokens=turn.max_tokens,
            params=turn.params,
            request_id=turn.request_id,
        )
        try:
            while not switch.requested:
                switch.waiting = True
                try:
                    piece = await call.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    switch.waiting = False
                if type(piece) is str:
                    if reply.first_chunk_ms is None:
                        reply.first_chunk_ms = int((time.monotonic() - started) * 1000)
                    reply.parts.append(piece)
                    yield Delta(piece)
                elif type(piece) is ToolCallsDelta:
                    if reply.first_chunk_ms is None:
                        reply.first_chunk_ms = int((time.monotonic() - started) * 1000)
                    reply.tool_parts.append(piece.text)
                    yield Delta("", tool_calls=piece.calls)
                elif type(piece) is Reasoning:
                    reply.reasoning_parts.append(piece.text)  # billed; the reply's text is what is shown
                elif type(piece) is MayBill:
                    reply.called = piece.value
                else:
                    reply.ended = piece  # type: ignore[assignment]
                    reply.route = reply.ended.route
            if reply.ended is None:
                reply.status = Message.Status.STOPPED
        except asyncio.CancelledError:
            if not switch.cancelled:
                raise  # not our stop: the caller's task is being torn down (finally saves it)
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            reply.status = Message.Status.STOPPED
        except Exception:
            # A bug, not an upstream fault: keep what arrived and label it; one closing event.
            logger.exception("chat turn failed")
            reply.ended = CallEnded(route=reply.route, usage=None, error=UpstreamError(ErrorCode.INTERNAL_ERROR))
        finally:
            await call.aclose()
        if reply.status != Message.Status.STOPPED and reply.error is not None:
            produced = reply.parts or reply.tool_parts or reply.reasoning_parts
            reply.status = Message.Status.INTERRUPTED if produced else Message.Status.FAILED
        # 6 settle, 7 persist. Once begun, this runs to its end whatever happens to the
        # caller: a caller that goes away now (its task cancelled while the step waits for a
        # thread) still has its reply saved and billed, here and not twice.
        finished = True
        closing = asyncio.ensure_future(off_the_loop(turn_close)(turn=turn, reply=reply, started=started))
        try:
            closed = await asyncio.shield(closing)
        except asyncio.CancelledError:
            try:
                await asyncio.shield(closing)
            except Exception:
                logger.exception("finishing a turn its caller had left failed")
            raise
        yield closed
    finally:
        switch.close()
        if not finished:
            # The caller went away mid-reply (its task cancelled, or it stopped iterating):
            # what arrived is still saved and billed, as a stopped reply.
            reply.status = Message.Status.STOPPED
            await asyncio.shield(off_the_loop(turn_close)(turn=turn, reply=reply, started=started))
