"""Writes of the learn app: only the tokenizer's per-user call counter (in the cache)."""

from __future__ import annotations

import time

from django.core.cache import cache

# The tokenizer page asks again after each pause in typing (debounced), so a student typing
# steadily makes a few calls a minute; a script hammering the endpoint is stopped here.
TOKENIZER_CALLS_PER_MINUTE = 60


def tokenizer_call_allowed(*, user_id: int, now: float | None = None) -> int | None:
    """Count one tokenizer call of this user in the current minute (the pattern of
    providers.demo.demo_public_call_allowed). None: allowed; else the seconds until the
    next minute, when they may call again.

    Side effects: increments a cache counter that expires after two minutes."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    key = f"learn-tokenizer-rpm:{user_id}:{minute}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new minute
        cache.add(key, 1, timeout=120)
        count = 1
    if count > TOKENIZER_CALLS_PER_MINUTE:
        return max(1, 60 - int(now % 60))
    return None
