"""Password hashing that leaves the server room to serve everyone else.

Checking a password costs about a third of a second of CPU on purpose (PBKDF2, a million
rounds). When a class logs in at once, every login ran its hash on its own thread at the
same time: thirty of them took both cores, and the chats already running stalled for
seconds (first tokens at 8.5 s instead of 0.5 s). Here at most PASSWORD_HASHING_CONCURRENCY
hashes run at once (one fewer than the cores, at least one): logins queue among themselves,
and the rest of the server keeps a core. A hash waits at most PASSWORD_HASHING_WAIT seconds
for its turn: anyone can send made-up logins (they are hashed too, so the answer takes as
long), and an endless queue would hold every real login back. The hashes are Django's own.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def hashing_slots() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            default = max(1, (os.cpu_count() or 2) - 1)
            _slots = threading.BoundedSemaphore(getattr(settings, "PASSWORD_HASHING_CONCURRENCY", None) or default)
        return _slots


class PBKDF2OneCoreAtATimeHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2-SHA256 (the same `pbkdf2_sha256$...` hashes), at most a few at once.
    Checking a password (also for an unknown username, which Django hashes anyway so the
    answer takes as long) goes through `encode` too."""

    def encode(self, password: str, salt: str, iterations: int | None = None) -> Any:
        # A queue that never gives up could be filled by anyone (made-up usernames are hashed
        # too, and a client may leave as soon as it sent the form): past
        # PASSWORD_HASHING_WAIT seconds a hash runs without its turn, as it did before.
        slots = hashing_slots()
        turn = slots.acquire(timeout=getattr(settings, "PASSWORD_HASHING_WAIT", 5.0))
        try:
            return super().encode(password, salt, iterations)
        finally:
            if turn:
                slots.release()
