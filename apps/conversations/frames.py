"""The websocket protocol's frames (see README, "Websocket protocol").

The completion pipeline speaks in these frames whatever the entry point; the consumer sends
them as they are.
"""
from __future__ import annotations

from typing import Literal, TypedDict


class UsageFrame(TypedDict):
    prompt_tokens: int
    completion_tokens: int


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


class ErrorFrame(TypedDict):
    type: Literal["chat.error"]
    code: str
    message: str


ServerFrame = StartedFrame | DeltaFrame | DoneFrame | ErrorFrame
