"""The chat websocket (/ws/chat/): parse frames, authorize, hand them to the pipeline."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import HttpRequest
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .frames import ErrorFrame, ServerFrame
from .pipeline import ChatError, ChatRequest, completion_run

logger = logging.getLogger(__name__)

# Close code for "log in first" (4000-4999 are the application's own).
CLOSE_UNAUTHENTICATED = 4401
MAX_FRAME_CHARS = 64_000


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.language = _scope_language(self.scope)
        self.open = True
        self.turn: asyncio.Task[None] | None = None
        self.stop = asyncio.Event()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # The running turn (if any) goes on: the reply completes, is saved and billed, and
        # the student sees it after a reload. Only the frames stop.
        self.open = False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self.send_error("bad_request", _("Send JSON text frames of at most 64,000 characters."))
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_request", _("The frame is not valid JSON."))
            return
        if not isinstance(frame, dict):
            await self.send_error("bad_request", _("The frame must be a JSON object."))
            return
        handler = {"chat.send": self.chat_send, "chat.regenerate": self.chat_regenerate,
                   "chat.stop": self.chat_stop}.get(frame.get("type"))
        if handler is None:
            await self.send_error("bad_request", _("Unknown frame type."))
            return
        await handler(frame)

    async def chat_send(self, frame: dict[str, Any]) -> None:
        content = frame.get("content")
        if not isinstance(content, str):
            await self.send_error("bad_request", _("'content' is required."))
            return
        await self.start_turn(frame, content=content, regenerate=False)

    async def chat_regenerate(self, frame: dict[str, Any]) -> None:
        if frame.get("conversation") is None:
            await self.send_error("bad_request", _("'conversation' is required."))
            return
        await self.start_turn(frame, content="", regenerate=True)

    async def start_turn(self, frame: dict[str, Any], *, content: str, regenerate: bool) -> None:
        conversation = frame.get("conversation")
        model = frame.get("model")
        params = frame.get("params", {})
        if conversation is not None and (isinstance(conversation, bool) or not isinstance(conversation, int)):
            await self.send_error("bad_request", _("'conversation' must be an id or null."))
            return
        if not isinstance(model, str) or not model:
            await self.send_error("bad_request", _("'model' is required, as provider/model."))
            return
        if not isinstance(params, dict):
            await self.send_error("bad_request", _("'params' must be an object."))
            return
        if self.turn is not None and not self.turn.done():
            await self.send_error("busy", _("Wait for the current reply to finish, or stop it."))
            return
        self.stop = asyncio.Event()
        request = ChatRequest(conversation_id=conversation, model=model, content=content, params=params,
                              regenerate=regenerate)
        self.turn = asyncio.create_task(self.run_turn(request, self.stop))

    async def chat_stop(self, frame: dict[str, Any]) -> None:
        if self.turn is None or self.turn.done():
            await self.send_error("not_running", _("There is no reply to stop."))
            return
        self.stop.set()

    async def run_turn(self, request: ChatRequest, stop: asyncio.Event) -> None:
        try:
            with translation.override(self.language):
                await completion_run(user=self.user, request=request, relay=self.relay, stop=stop)
        except ChatError as exc:
            await self.send_error(exc.code, exc.message, retry_after=exc.retry_after, reset_at=exc.reset_at)
        except Exception:
            logger.exception("chat turn failed")
            await self.send_error("internal_error", _("Something went wrong on the server."))

    async def relay(self, frame: ServerFrame) -> None:
        if self.open:
            await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def send_error(self, code: str, message: Promise | str, *, retry_after: int | None = None,
                         reset_at: str | None = None) -> None:
        with translation.override(self.language):
            frame: ErrorFrame = {"type": "chat.error", "code": code, "message": str(message)}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        if reset_at is not None:
            frame["reset_at"] = reset_at
        await self.relay(frame)


def _scope_language(scope: dict[str, Any]) -> str:
    """The language the page was shown in: the language cookie, else Accept-Language."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)
