"""The websocket protocol's frames (see README, "Websocket protocol").

The completion pipeline speaks in these frames whatever the entry point; the consumer sends
them as they are. Frames from the browser are parsed here (frame_parse) and their fields
checked where every entry point checks them (params.py, through ChatRequest).
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict

from django.utils.translation import gettext_lazy as _

from apps.billing.selectors import QuotaFigures, quota_figures
from webchat.errors import BAD_JSON, ErrorCode, RequestRefused

from .params import json_value_check

MAX_FRAME_CHARS = 64_000
CLIENT_FRAME_TYPES = ("chat.send", "chat.regenerate", "chat.edit", "chat.stop", "compare.send")


def frame_parse(*, text: str | None) -> dict[str, Any]:
    """A frame from the browser: a JSON object of a known `type`, within the size, nesting
    and character limits. Raises RequestRefused(bad_request) for anything else, and nothing
    but that, whatever the text (the socket answers every frame and stays open)."""
    if text is None or len(text) > MAX_FRAME_CHARS:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("Send JSON text frames of at most 64,000 characters."))
    try:
        frame = json.loads(text)
    except BAD_JSON:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("The frame is not valid JSON.")) from None
    if not isinstance(frame, dict):
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("The frame must be a JSON object."))
    json_value_check(frame)
    if not isinstance(frame.get("type"), str) or frame["type"] not in CLIENT_FRAME_TYPES:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("Unknown frame type."))
    return frame


class UsageFrame(TypedDict):
    prompt_tokens: int
    completion_tokens: int


# The meter's figures (used, held by running replies, left, limits), as billing writes them.
QuotaFrame = QuotaFigures
quota_frame_from = quota_figures


class StartedFrame(TypedDict):
    type: Literal["chat.started"]
    conversation: int
    message: int
    question: NotRequired[int]  # the question the turn wrote (not on a regenerate)


class DeltaFrame(TypedDict):
    type: Literal["chat.delta"]
    text: str


class DoneFrame(TypedDict, total=False):
    type: Literal["chat.done"]
    message: int
    status: str
    usage: UsageFrame
    # Beyond the fixed protocol fields: what the reply's footer shows.
    model: str
    first_chunk_ms: int | None
    error_code: str
    error: str
    cost: str | None
    currency: str
    quota: QuotaFrame
    message_html: str  # the whole message as the page shows it after a reload (_message.html)
    question_html: str  # after an edit or a regenerate: the question, with its versions switcher


class ErrorFrame(TypedDict, total=False):
    type: Literal["chat.error"]
    code: str
    message: str
    # Only where they apply: when to try again (rate_limited), when the quota resets
    # (quota_exceeded), the meter after a failed turn.
    retry_after: int
    reset_at: str
    quota: QuotaFrame
    message_html: str  # a reply that failed: the saved message as a reload shows it
    question_html: str  # as in DoneFrame


ServerFrame = StartedFrame | DeltaFrame | DoneFrame | ErrorFrame
