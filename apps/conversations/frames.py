"""The websocket protocol's frames (see README, "Websocket protocol").

The completion pipeline speaks in these frames whatever the entry point; the consumer sends
them as they are.
"""
from __future__ import annotations

from typing import Literal, TypedDict

from apps.billing.selectors import QuotaStatus


class UsageFrame(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class QuotaFrame(TypedDict):
    tokens_used: int
    token_limit: int | None
    cost_used: str
    cost_limit: str | None
    currency: str
    reset_at: str | None
    percent_used: int


def quota_frame_from(status: QuotaStatus) -> QuotaFrame:
    return {
        "tokens_used": status.tokens_used, "token_limit": status.token_limit, "cost_used": str(status.cost_used),
        "cost_limit": str(status.cost_limit) if status.cost_limit is not None else None,
        "currency": status.currency, "reset_at": status.reset_at.isoformat() if status.reset_at else None,
        "percent_used": status.percent_used,
    }


class StartedFrame(TypedDict):
    type: Literal["chat.started"]
    conversation: int
    message: int


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
    html: str  # the finished reply rendered from Markdown and sanitised on the server
    quota: QuotaFrame


class ErrorFrame(TypedDict, total=False):
    type: Literal["chat.error"]
    code: str
    message: str
    # Only where they apply: when to try again (rate_limited), when the quota resets
    # (quota_exceeded), the meter after a failed turn.
    retry_after: int
    reset_at: str
    quota: QuotaFrame


ServerFrame = StartedFrame | DeltaFrame | DoneFrame | ErrorFrame
