"""Django's own middlewares, with their hooks run on the event loop (see HooksOnTheLoop).

Apart from webchat/middleware.py because these import Django's auth and sessions, which need
the apps loaded; that module is imported with the logging configuration.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest
from django.middleware import clickjacking, common, csrf, locale, security


class HooksOnTheLoop:
    """Django's MiddlewareMixin middlewares, with their hooks run on the event loop.

    In Django's async chain MiddlewareMixin sends each hook (process_request, process_view,
    process_response) to the request's thread and back: a dozen trips for every request, and
    a thread of its own made for each request even when its view is async (the /v1 API).
    The hooks of the middlewares below only read the request and set headers, so they run in
    place. A hook that may read or write a session does so on the thread, as before, when it
    would: `response_on_thread` and `view_on_thread` say when. Put this class first in the
    bases; in the sync chain (WSGI, the test client) nothing changes.
    """

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]
        if getattr(self, "async_mode", False) and hasattr(self, "process_view"):
            # Django adapts a sync process_view to the async chain with a thread trip: an
            # async one on the instance is called as it is.
            hook = self.process_view

            async def process_view(request: HttpRequest, view: Any, args: Any, kwargs: Any) -> Any:
                if self.view_on_thread(request):
                    return await sync_to_async(hook, thread_sensitive=True)(request, view, args, kwargs)
                return hook(request, view, args, kwargs)

            self.process_view = process_view

    async def __acall__(self, request: HttpRequest) -> Any:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)  # type: ignore[attr-defined]
        if hasattr(self, "process_response"):
            if self.response_on_thread(request, response):
                return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            response = self.process_response(request, response)
        return response

    def view_on_thread(self, request: HttpRequest) -> bool:
        return False

    def response_on_thread(self, request: HttpRequest, response: Any) -> bool:
        return False


class SecurityMiddleware(HooksOnTheLoop, security.SecurityMiddleware):
    pass


class SessionMiddleware(HooksOnTheLoop, sessions.SessionMiddleware):
    def response_on_thread(self, request: HttpRequest, response: Any) -> bool:
        # Saving a changed session writes it (database or cache); reading one that was never
        # loaded is not needed to answer.
        return request.session.modified or settings.SESSION_SAVE_EVERY_REQUEST


class LocaleMiddleware(HooksOnTheLoop, locale.LocaleMiddleware):
    pass


class CommonMiddleware(HooksOnTheLoop, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(HooksOnTheLoop, csrf.CsrfViewMiddleware):
    def view_on_thread(self, request: HttpRequest) -> bool:
        # Checking a form reads its body: an upload may spill to files on disk.
        return request.content_type == "multipart/form-data"


class AuthenticationMiddleware(HooksOnTheLoop, auth.AuthenticationMiddleware):
    pass  # request.user stays lazy: the account is read where it is used


class MessageMiddleware(HooksOnTheLoop, messages.MessageMiddleware):
    def response_on_thread(self, request: HttpRequest, response: Any) -> bool:
        # Messages shown or added are stored back (the session, or a cookie).
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(HooksOnTheLoop, clickjacking.XFrameOptionsMiddleware):
    pass
