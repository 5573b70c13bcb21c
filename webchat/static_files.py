"""WhiteNoise, able to sit in an async middleware chain.

WhiteNoise's middleware is sync only (see webchat/middleware.py). Here a request that is
not for a static file goes straight on; a static file is looked up in WhiteNoise's table in
memory and opened on a worker thread.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware

from webchat.middleware import SyncAndAsync


class StaticFilesMiddleware(SyncAndAsync, WhiteNoiseMiddleware):
    def __init__(self, get_response: Any = None, **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.mode_set(get_response)

    def call_sync(self, request: HttpRequest) -> Any:
        return WhiteNoiseMiddleware.__call__(self, request)

    async def call_async(self, request: HttpRequest) -> Any:
        if self.autorefresh:  # DEBUG: looks on disk
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
