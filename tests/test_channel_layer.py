"""The channel layer keeps a socket's wait for messages alive through Redis read timeouts
(webchat/channel_layer.py), against the real Redis of the PostgreSQL + Redis pass."""

from __future__ import annotations

import asyncio
import os

import pytest

from webchat.channel_layer import RedisChannelLayer

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (the PostgreSQL + Redis pass of make test)")


async def test_a_read_that_times_out_waits_again_and_gets_the_message() -> None:
    # A read timeout (1 s) far below the layer's blocking wait (5 s): every idle wait times out.
    layer = RedisChannelLayer(hosts=[{"address": REDIS_URL, "socket_timeout": 1}])
    try:
        channel = await layer.new_channel()

        async def later() -> None:
            await asyncio.sleep(2.5)
            await layer.send(channel, {"type": "chat.note", "text": "after the timeouts"})

        sender = asyncio.ensure_future(later())
        message = await asyncio.wait_for(layer.receive(channel), timeout=15)
        await sender
        assert message == {"type": "chat.note", "text": "after the timeouts"}
    finally:
        await layer.flush()
        await layer.close_pools()
