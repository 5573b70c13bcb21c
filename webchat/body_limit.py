"""The largest request body the site takes, checked before anything is stored.

Django's ASGI handler copies a request's whole body into a temporary file before any view
(or any check of who is asking) runs; DATA_UPLOAD_MAX_MEMORY_SIZE is applied only later,
when a view reads it. uvicorn sets no limit of its own. Without this, anyone could send a
gigabyte to any URL, signed in or not, and keep it on the server's disk while their
connection stayed open. In the compose stack nginx's `client_max_body_size` (3 MiB) stops
far larger bodies first; this holds for the embedded server (`make run`), a container
published without nginx, and the bodies between the two limits.

A body announced larger (Content-Length) is refused before a byte of it is read; a body
sent in chunks is counted as it arrives and refused once past the limit. The answer is 413:
in OpenAI's error format under /v1 and /demo/v1 (the SDK raises its APIStatusError), plain
text elsewhere, in the language of Accept-Language.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

API_PREFIXES = ("/v1/", "/demo/v1/")


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        announced = _header(scope, b"content-length")
        if announced is not None and (not announced.isdigit() or int(announced) > self.max_bytes):
            return await self._refuse(scope, send)
        received = 0

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        # `send` goes as it is (not wrapped: a streamed reply's every piece passes it).
        # Django reads the whole body before it answers, so a body too large is found before
        # any response has begun.
        try:
            await self.app(scope, counted_receive, send)
        except BodyTooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        with translation.override(_language(scope)):
            message = _("The request is too large: at most %(size)d bytes.") % {"size": self.max_bytes}
        if scope["path"].startswith(API_PREFIXES):
            error = {"message": message, "type": "invalid_request_error", "param": None, "code": "request_too_large"}
            body, content_type = json.dumps({"error": error}, ensure_ascii=False).encode(), b"application/json"
        else:
            body, content_type = message.encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    # What is left of the body is not read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _language(scope: dict[str, Any]) -> str:
    """The first language of Accept-Language the site has, else the site's default."""
    accepted = _header(scope, b"accept-language") or ""
    for code, _quality in translation.trans_real.parse_accept_lang_header(accepted):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE
