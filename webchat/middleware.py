"""What a middleware needs to sit in Django's async chain without a thread hop.

A middleware that is sync only makes Django run every request of an ASGI server through a
thread and back (the /v1 API's streamed replies included); Django's own MiddlewareMixin
is async-capable but runs its hooks on a thread. A subclass of SyncAndAsync calls
`mode_set(get_response)` when it is made and defines `call_sync` and `call_async`. Django's
own middlewares are used through webchat/django_middleware.py, which runs their hooks in
place.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest


class SyncAndAsync:
    sync_capable = True
    async_capable = True
    is_async = False

    def mode_set(self, get_response: Any) -> None:
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.call_async(request)
        return self.call_sync(request)

    def call_sync(self, request: HttpRequest) -> Any:
        raise NotImplementedError

    async def call_async(self, request: HttpRequest) -> Any:
        raise NotImplementedError
