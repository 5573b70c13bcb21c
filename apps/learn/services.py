"""Writes of the learn app: only the tokenizer's per-user call counter (in the cache)."""

from __future__ import annotations

from webchat.throttle import minute_call_take

# The tokenizer page asks again after each pause in typing (debounced), so a student typing
# steadily makes a few calls a minute; a script hammering the endpoint is stopped here.
TOKENIZER_CALLS_PER_MINUTE = 60


def tokenizer_call_allowed(*, user_id: int, now: float | None = None) -> int | None:
    """Count one tokenizer call of this user in the current minute. None: allowed; else the
    seconds until the next minute, when they may call again (webchat/throttle.py)."""
    return minute_call_take(scope="learn-tokenizer-rpm", caller=str(user_id), limit=TOKENIZER_CALLS_PER_MINUTE, now=now)
