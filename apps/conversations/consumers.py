"""The chat websocket (/ws/chat/): parse frames, authorize, hand them to the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import session_signs_in
from apps.accounts.sockets import CLOSE_SIGNED_OUT, SocketsClose, session_tag, user_socket_group
from webchat.errors import ErrorCode, RequestRefused
from webchat.threads import off_the_loop

from .errors import upstream_message
from .frames import DoneFrame, ErrorFrame, ServerFrame, frame_parse, quota_frame_from
from .models import Message
from .pipeline import (
    MAX_LANES,
    ChatRequest,
    Delta,
    Event,
    Finished,
    Refused,
    Started,
    comparison_run,
    completion_run,
)
from .selectors import versions_attach
from .socket_slots import SLOT_REFRESH, socket_slot_free, socket_slot_keep, socket_slot_take

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's own): 4401 and 4403 are accounts' (see
# apps/accounts/sockets.py), on which the chat page reloads; on this one it tries again later.
CLOSE_TOO_MANY_SOCKETS = 4429
# {"type": "chat.delta", "text": ...}: built by hand, as it is sent for every piece of a reply.
DELTA_FRAME_HEAD = '{"type": "chat.delta", "text": '


class ChatConsumer(AsyncWebsocketConsumer):
    group: str | None = None
    slot_keeper: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """However the socket ends, its place is given back: by a close, or by a fault the
        server raised (a handshake the client reset, a send after the server had closed the
        socket itself), after which Channels calls no `disconnect`."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()

    async def connect(self) -> None:
        self.language = _scope_language(self.scope)
        self.open = False
        self.group: str | None = None
        self.slot: int | None = None
        self.slot_keeper: asyncio.Task[None] | None = None
        self.turn: asyncio.Task[None] | None = None
        self.turn_ended = True
        self.stop = asyncio.Event()
        self.lane_stops: list[asyncio.Event] = []  # a comparison's, one per lane
        user = self.scope.get("user")
        signed_in = user is not None and user.is_authenticated and user.is_active
        if signed_in:
            self.user: User = user
            self.session_key: str | None = self.scope["session"].session_key
            # The password hash this session signed in with: every turn checks it still holds.
            self.session_hash: str = await off_the_loop(self.scope["session"].get)(HASH_SESSION_KEY, "")
            self.slot = await off_the_loop(socket_slot_take)(user_id=user.pk, channel_name=self.channel_name)
            if self.slot is not None:
                # Accounts closes the user's sockets through this group (logout, deactivation,
                # new password, removal from a class, archived class), from whichever process.
                # Joined before the handshake completes: a logout the moment the page sees the
                # socket open must reach it.
                self.group = user_socket_group(user.pk)
                await self.channel_layer.group_add(self.group, self.channel_name)
        # Accept, then close with a code: a handshake refused outright reaches the browser as
        # HTTP 403 and close code 1006, which the page cannot tell from a network fault.
        await self.accept()
        self.open = True
        if not signed_in:
            await self.close_with(CLOSE_SIGNED_OUT)
            return
        if self.slot is None:
            with translation.override(self.language):
                await self.send_error(
                    ErrorCode.TOO_MANY_SOCKETS,
                    _(
                        "The chat is open in too many tabs or windows (at most %(n)d). Close one; this page tries "
                        "again in a moment."
                    )
                    % {"n": settings.CHAT_MAX_SOCKETS_PER_USER},
                )
            await self.close_with(CLOSE_TOO_MANY_SOCKETS)
            return
        self.slot_keeper = asyncio.create_task(self.keep_slot())

    async def disconnect(self, code: int) -> None:
        # The running turn (if any) goes on: the reply completes, is saved and billed, and
        # the student sees it after a reload. Only the frames stop.
        self.open = False
        await self.release()

    async def release(self) -> None:
        """The socket's place and group given back (once, whichever comes first)."""
        if self.slot_keeper is not None:
            self.slot_keeper.cancel()
        group, self.group = self.group, None
        if group is not None:
            await self.channel_layer.group_discard(group, self.channel_name)
            await off_the_loop(socket_slot_free)(user_id=self.user.pk, channel_name=self.channel_name, slot=self.slot)

    async def keep_slot(self) -> None:
        """While open: refresh the socket's slot (so it does not expire), and rejoin the
        group (the Redis layer forgets a membership after a day)."""
        assert self.group is not None
        while True:
            await asyncio.sleep(SLOT_REFRESH)
            try:
                self.slot = await off_the_loop(socket_slot_keep)(
                    user_id=self.user.pk, channel_name=self.channel_name, slot=self.slot
                )
                await self.channel_layer.group_add(self.group, self.channel_name)
            except Exception:  # the cache or Redis is away for a moment: try again next time
                logger.warning("could not refresh a chat socket's slot", exc_info=True)

    async def close_with(self, code: int) -> None:
        self.open = False  # nothing more is sent once the close is on its way
        with contextlib.suppress(OSError, RuntimeError):  # gone already, or closed by the server
            await self.close(code=code)

    async def sockets_close(self, message: SocketsClose) -> None:
        """From accounts (apps/accounts/sockets.py): this user's sign-in or class place ended."""
        if message["session"] and (not self.session_key or message["session"] != session_tag(self.session_key)):
            return  # another session of the same user ended; this one goes on
        # A reply being written stops as after chat.stop: what arrived is saved and billed.
        self.stop_all()
        await self.close_with(message["code"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            # Messages formatted on the way (with their bounds filled in) in the page's language.
            with translation.override(self.language):
                frame = frame_parse(text=text_data)
                handler = {
                    "chat.send": self.chat_send,
                    "chat.regenerate": self.chat_regenerate,
                    "chat.edit": self.chat_edit,
                    "chat.stop": self.chat_stop,
                    "compare.send": self.compare_send,
                }[frame["type"]]
                await handler(frame)
        except RequestRefused as exc:
            await self.send_error(exc.code, exc.message)
        except Exception:
            # A bug must not drop the socket (and every frame after it): answer and log it.
            logger.exception("chat frame failed")
            await self.send_error(ErrorCode.INTERNAL_ERROR, _("Something went wrong on the server."))

    async def chat_send(self, frame: dict[str, Any]) -> None:
        # "after": the message the question follows (the branch the page shows).
        await self.start_turn(frame, content=frame.get("content"), message_id=frame.get("after"))

    async def chat_regenerate(self, frame: dict[str, Any]) -> None:
        if frame.get("conversation") is None:
            raise RequestRefused(ErrorCode.BAD_REQUEST, _("'conversation' is required."), param="conversation")
        await self.start_turn(frame, content="", message_id=frame.get("message"), regenerate=True)

    async def chat_edit(self, frame: dict[str, Any]) -> None:
        for name in ("conversation", "message"):
            if frame.get(name) is None:
                raise RequestRefused(ErrorCode.BAD_REQUEST, _("'%(name)s' is required.") % {"name": name}, param=name)
        await self.start_turn(frame, content=frame.get("content"), message_id=frame.get("message"), edit=True)

    async def start_turn(
        self,
        frame: dict[str, Any],
        *,
        content: object,
        message_id: object,
        regenerate: bool = False,
        edit: bool = False,
    ) -> None:
        # Every field is checked as the request is built (params.py): RequestRefused if bad.
        request = ChatRequest(
            conversation_id=frame.get("conversation"),
            model=frame.get("model"),
            content=content,  # type: ignore[arg-type]  # checked by ChatRequest
            params=frame.get("params", {}),
            max_tokens=frame.get("max_tokens"),
            regenerate=regenerate,
            edit=edit,
            message_id=message_id,  # type: ignore[arg-type]  # checked by ChatRequest
        )
        self.turn_begin(lambda stop: self.run_turn(request, stop))

    async def compare_send(self, frame: dict[str, Any]) -> None:
        """One question to 2-4 models at once; each lane its own reply (frames with "lane")."""
        models = frame.get("models")
        if (
            not isinstance(models, list)
            or not 2 <= len(models) <= MAX_LANES
            or len({str(model) for model in models}) != len(models)
        ):
            raise RequestRefused(
                ErrorCode.BAD_REQUEST,
                _("'models' must list 2 to %(n)d different models.") % {"n": MAX_LANES},
                param="models",
            )
        if frame.get("conversation") is not None:
            raise RequestRefused(
                ErrorCode.BAD_REQUEST, _("A comparison starts new conversations."), param="conversation"
            )
        requests = [
            ChatRequest(
                conversation_id=None,
                model=model,
                content=frame.get("content"),  # type: ignore[arg-type]  # checked by ChatRequest
                params=frame.get("params", {}),
                max_tokens=frame.get("max_tokens"),
            )
            for model in models
        ]
        self.turn_begin(lambda stop: self.run_comparison(requests, stop), lanes=len(requests))

    def turn_begin(self, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, lanes: int = 0) -> None:
        """Start a turn (a reply, or a comparison's lanes) with a fresh stop switch (and one
        per lane), unless one is still running: one at a time per socket."""
        if self.turn is not None and not self.turn.done() and not self.turn_ended:
            raise RequestRefused(ErrorCode.BUSY, _("Wait for the current reply to finish, or stop it."))
        self.stop = asyncio.Event()
        self.lane_stops = [asyncio.Event() for _ in range(lanes)]
        self.turn_ended = False
        self.turn = asyncio.create_task(run(self.stop))

    async def run_comparison(self, requests: list[ChatRequest], stop: asyncio.Event) -> None:
        """The lanes' events as chat frames, each with its "lane", then compare.done."""
        try:
            with translation.override(self.language):
                async for lane, event in comparison_run(
                    identify=self.identify, requests=requests, stop=stop, lane_stops=self.lane_stops
                ):
                    if type(event) is Refused:
                        await self.frame_event(event)  # the whole comparison, before anything was written
                        return
                    await self.frame_event(event, lane=lane)
                self.turn_ended = True
                await self.relay({"type": "compare.done"})  # type: ignore[typeddict-item]
        except Exception:
            logger.exception("comparison failed")
            if not self.turn_ended:
                self.turn_ended = True
                await self.send_error(ErrorCode.INTERNAL_ERROR, _("Something went wrong on the server."))

    async def chat_stop(self, frame: dict[str, Any]) -> None:
        """Stop the reply, or every lane of a comparison; with `lane`, that lane alone."""
        if self.turn is None or self.turn.done() or self.turn_ended:
            raise RequestRefused(ErrorCode.NOT_RUNNING, _("There is no reply to stop."))
        lane = frame.get("lane")
        if lane is None:
            self.stop_all()
        elif type(lane) is int and 0 <= lane < len(self.lane_stops):
            self.lane_stops[lane].set()
        else:
            raise RequestRefused(ErrorCode.BAD_REQUEST, _("There is no such lane to stop."))

    def stop_all(self) -> None:
        self.stop.set()
        for lane_stop in self.lane_stops:
            lane_stop.set()

    def identify(self) -> User:
        """Every turn, not only the handshake (run by the pipeline's prepare step): is the
        session still there, does its password hash still match, is the account still
        active? A socket outlives a logout or a new password unless told; this holds even
        if the telling failed."""
        user = session_signs_in(session_key=self.session_key, user_id=self.user.pk, session_hash=self.session_hash)
        if user is None or user.pk != self.user.pk:
            raise RequestRefused(ErrorCode.SIGNED_OUT, _("Your session has ended. Log in again."))
        return user

    async def run_turn(self, request: ChatRequest, stop: asyncio.Event) -> None:
        """The pipeline's events, as frames; plus what the chat page needs (the reply's
        rendered HTML, the quota meter)."""
        try:
            with translation.override(self.language):
                async for event in completion_run(identify=self.identify, request=request, stop=stop):
                    await self.frame_event(event, versioned=request.regenerate or request.edit, edited=request.edit)
        except Exception:
            # A fault outside the reply (the database away while preparing, say): the page
            # still gets one closing frame. Faults during the reply end in Finished instead.
            logger.exception("chat turn failed")
            if not self.turn_ended:
                self.turn_ended = True
                await self.send_error(ErrorCode.INTERNAL_ERROR, _("Something went wrong on the server."))

    async def frame_event(
        self, event: Event, *, lane: int | None = None, versioned: bool = False, edited: bool = False
    ) -> None:
        """`versioned`: the turn made a new version of a reply (regenerate) or of a question
        (`edited`), so the finished reply, and an edited question, come with their versions
        switchers."""
        if type(event) is Delta:
            # The hot path: one small JSON encode and straight to the ASGI send.
            if self.open:
                head = DELTA_FRAME_HEAD if lane is None else f'{{"type": "chat.delta", "lane": {lane}, "text": '
                await self.send_text(head + json.dumps(event.text, ensure_ascii=False) + "}")
        elif type(event) is Started:
            started: dict[str, Any] = {
                "type": "chat.started",
                "conversation": event.conversation_id,
                "message": event.reply_id,
            }
            if event.question_id is not None:
                started["question"] = event.question_id
            await self.relay({**started, "lane": lane} if lane is not None else started)  # type: ignore[arg-type]
        elif type(event) is Finished:
            frame = await finished_frame(event, versioned=versioned, edited=edited)
            if lane is None:
                # Ended once its frame is built (the reply's HTML renders on a thread): a stop
                # while it renders is nothing to refuse, and the next chat.send may come as
                # soon as this frame is out (no await between here and the send).
                self.turn_ended = True
            await self.relay({**frame, "lane": lane} if lane is not None else frame)  # type: ignore[arg-type]
        elif type(event) is Refused:
            self.turn_ended = True
            error = event.error
            await self.send_error(
                error.code,
                error.message,
                retry_after=error.retry_after,
                reset_at=error.reset_at.isoformat() if error.reset_at else None,
            )
            if error.code == ErrorCode.SIGNED_OUT:
                await self.close_with(CLOSE_SIGNED_OUT)

    async def relay(self, frame: ServerFrame) -> None:
        if self.open:
            await self.send_text(json.dumps(frame, ensure_ascii=False))

    async def send_text(self, text: str) -> None:
        """One frame to the browser. A browser that has gone (its disconnect not handled yet)
        ends the sending, not the turn: the reply still completes, is saved and billed."""
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        # OSError: what an ASGI server raises for a send after the client left (ASGI 2.4);
        # RuntimeError: uvicorn's for a send after it closed the socket itself (a ping the
        # client never answered).
        except (OSError, RuntimeError):
            self.open = False

    async def send_error(
        self, code: str, message: Promise | str, *, retry_after: int | None = None, reset_at: str | None = None
    ) -> None:
        with translation.override(self.language):
            frame: ErrorFrame = {"type": "chat.error", "code": code, "message": str(message)}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        if reset_at is not None:
            frame["reset_at"] = reset_at
        await self.relay(frame)


async def finished_frame(event: Finished, *, versioned: bool = False, edited: bool = False) -> ServerFrame:
    """chat.done (or chat.error for a reply that failed before any text), with the footer's
    facts, the reply rendered from Markdown on the server, and the quota meter after it.
    `versioned` (regenerate, edit): the reply with its versions switcher, and when `edited`
    the new question with its own (`question_html`); a query or two more, only then."""
    message, outcome, error = event.message, event.outcome, event.error
    quota = quota_frame_from(event.quota)
    # The whole message as a reload shows it (body, badges, footer, error), rendered off the
    # event loop every socket of this process shares: the page puts it in place of the
    # streamed one, so live and reloaded are one rendering.
    language = translation.get_language()
    question_html = ""
    if versioned:
        message, question_html = await off_the_loop(_versioned_html)(message, language, edited)
    message_html = await asyncio.to_thread(_message_html, message, language)
    if message.status == Message.Status.FAILED:
        code = error.code if error else ErrorCode.UPSTREAM_ERROR
        failed: ErrorFrame = {
            "type": "chat.error",
            "code": code,
            "message": upstream_message(code=code, credential_scope=outcome.usage.credential_scope),
            "quota": quota,
            "message_html": message_html,
        }
        if question_html:
            failed["question_html"] = question_html
        return failed
    frame: DoneFrame = {
        "type": "chat.done",
        "message": message.pk,
        "status": message.status,
        # What was billed (settling bounds absurd counts), not what the provider claimed.
        "usage": {"prompt_tokens": message.prompt_tokens or 0, "completion_tokens": message.completion_tokens or 0},
        "model": outcome.usage.route_name,
        "first_chunk_ms": outcome.usage.first_chunk_ms,
        "cost": str(message.cost.normalize()) if message.cost is not None else None,
        "currency": message.currency,
        "quota": quota,
        "message_html": message_html,
    }
    if question_html:
        frame["question_html"] = question_html
    if error is not None:
        frame["error_code"] = error.code
        frame["error"] = upstream_message(
            code=error.code, credential_scope=outcome.usage.credential_scope, kept=bool(message.content)
        )
    return frame


def _versioned_html(message: Message, language: str, edited: bool) -> tuple[Message, str]:
    """The reply with its versions; after an edit, its question with its versions, rendered."""
    versions_attach(message=message)
    if not edited:
        return message, ""
    question = Message.objects.filter(pk=message.parent_id, role=Message.Role.USER).first()
    if question is None:
        return message, ""
    versions_attach(message=question)
    return message, _message_html(question, language)


def _message_html(message: Message, language: str) -> str:
    with translation.override(language):
        return render_to_string("conversations/_message.html", {"message": message})


def _scope_language(scope: dict[str, Any]) -> str:
    """The language the page was shown in: the language cookie, else Accept-Language."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)
