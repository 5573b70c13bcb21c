"""The Channels layer on Redis, with a socket's wait for its next message kept alive.

channels-redis waits for a socket's messages with a blocking BZPOPMIN of 5 s; redis-py gives
up on a read after its socket timeout. Should the timeout win (Redis slow, or a timeout set
close to the 5 s), channels-redis lets the TimeoutError out of `receive`, and Channels ends
the consumer with it: the student's socket closes mid-reply. Here the wait starts again
instead. (A message Redis handed over in the very instant the read gave up is lost, as it
was before; ending the consumer lost it too.)
"""

from __future__ import annotations

import logging

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis.exceptions import TimeoutError as RedisTimeout

logger = logging.getLogger(__name__)


class RedisChannelLayer(_RedisChannelLayer):
    async def receive(self, channel: str) -> dict:
        while True:
            try:
                return await super().receive(channel)
            except RedisTimeout:
                logger.info("a channel layer read timed out; waiting again")
