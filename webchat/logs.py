"""Structured logs: one JSON object per line, each with the request id it belongs to.

The id comes from the proxy's X-Request-ID (or is made here), is echoed in the response,
and follows the work into chat turns (the pipeline sets the turn's request id), so one
request's lines can be found across processes. Secrets never reach a log line: keys are
only ever logged as their last four characters, and the HTTP/SDK loggers are kept quiet.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from webchat.middleware import SyncAndAsync

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_set(value: str) -> contextvars.Token[str]:
    return request_id_var.set(value)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestIdMiddleware(SyncAndAsync):
    """Gives every HTTP request an id (the proxy's X-Request-ID when it is well formed)."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.mode_set(get_response)

    def call_sync(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id_begin(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    async def call_async(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id_begin(request)
        response = await self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _request_id_begin(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    # Not reset afterwards: Django logs the response (4xx/5xx) after the middleware
    # returns, and that line belongs to this request too. Each request runs in its own
    # context, so the value does not leak into the next one.
    request_id_set(request_id)
    return request_id
