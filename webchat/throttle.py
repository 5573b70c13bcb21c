"""Calls a minute per caller, counted in the cache (shared by every process on Redis).

One rule for the endpoints that have no quota of their own behind them: the public demo
provider (per address) and the tokenizer (per user).
"""

from __future__ import annotations

import time

from django.core.cache import cache


def minute_call_take(*, scope: str, caller: str, limit: int, now: float | None = None) -> int | None:
    """Count one call of `caller` in `scope` this minute. None: allowed; else the seconds
    until the next minute, when it may call again. Side effects: a cache counter that
    expires after two minutes."""
    now = time.time() if now is None else now
    key = f"{scope}:{caller}:{int(now // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new minute
        cache.add(key, 1, timeout=120)
        count = 1
    if count > limit:
        return max(1, 60 - int(now % 60))
    return None
