"""The Redis channel layer's settings hold under load."""

from __future__ import annotations

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings


def test_a_socket_waiting_on_redis_outlasts_the_layers_blocking_read() -> None:
    # channels-redis waits for a socket's messages with a blocking BZPOPMIN of brpop_timeout
    # seconds; redis-py gives up on any read after its socket timeout (5 s by default, the
    # same), so an event loop a moment late dropped the socket. Ours must be longer.
    if not settings.REDIS_URL:
        pytest.skip("the embedded default has no Redis (make test's second pass runs this)")
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host["address"] == settings.REDIS_URL
    assert host["socket_timeout"] > 2 * RedisChannelLayer.brpop_timeout
