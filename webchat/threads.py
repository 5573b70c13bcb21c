"""Blocking steps (database, cache) of async code, on a pool thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import DatabaseSyncToAsync


def off_the_loop(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run `func` on a pool thread, closing stale database connections around it as Channels
    does. Not Channels' default (thread_sensitive), which runs every such step of every
    socket and request of the process on one shared thread: one student's turn would wait
    for another's to prepare and finish."""
    return DatabaseSyncToAsync(func, thread_sensitive=False)
