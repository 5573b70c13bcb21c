"""How many chat sockets a user has open, counted across every ASGI process.

Each open socket holds one of CHAT_MAX_SOCKETS_PER_USER numbered slots: a key in the Django
cache, which is Redis (shared by every process) whenever several processes serve. Taking a
slot is `cache.add`, set-if-absent and atomic in Redis and in the local-memory cache alike,
so two sockets opening at once cannot both take the last slot. A slot expires SLOT_TTL
seconds after its socket last refreshed it (every SLOT_REFRESH seconds while open): a
process that dies without running disconnect() frees its slots within that time.

Plain functions doing blocking cache I/O: the consumer runs them off the event loop.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

SLOT_TTL = 90
SLOT_REFRESH = 30


def _slot_key(user_id: int, slot: int) -> str:
    return f"chat-socket:{user_id}:{slot}"


def socket_slot_take(*, user_id: int, channel_name: str) -> int | None:
    """The slot this socket now holds, or None when the user has every slot in use."""
    for slot in range(settings.CHAT_MAX_SOCKETS_PER_USER):
        if cache.add(_slot_key(user_id, slot), channel_name, timeout=SLOT_TTL):
            return slot
    return None


def socket_slot_keep(*, user_id: int, channel_name: str, slot: int | None) -> int | None:
    """Refresh this socket's slot. If it had expired (the process stalled for SLOT_TTL)
    and was taken by another socket, or was never held, take a free one if there is one:
    a socket that is already open is never closed for the cap."""
    if slot is not None and cache.get(_slot_key(user_id, slot)) == channel_name:
        cache.touch(_slot_key(user_id, slot), timeout=SLOT_TTL)
        return slot
    return socket_slot_take(user_id=user_id, channel_name=channel_name)


def socket_slot_free(*, user_id: int, channel_name: str, slot: int | None) -> None:
    """Give the slot back, unless it expired and another socket holds it now."""
    if slot is not None and cache.get(_slot_key(user_id, slot)) == channel_name:
        cache.delete(_slot_key(user_id, slot))


def socket_slots_forget(*, user_id: int) -> None:
    """Free every slot of the user (for tests: a cache shared across runs may hold slots
    of an earlier run's user with the same id)."""
    cache.delete_many([_slot_key(user_id, slot) for slot in range(settings.CHAT_MAX_SOCKETS_PER_USER)])
