"""WhiteNoise, able to sit in an async middleware chain.

WhiteNoise's middleware is sync only (see webchat/middleware.py). Here a request that is
not for a static file goes straight on; a static file is looked up in WhiteNoise's table in
memory, opened on a worker thread and its first block read there too, and the rest (if
any) is read a block at a time on a worker thread: an async iterator, as Django's ASGI
handler wants (a file's sync iterator makes it warn and read the whole file into a list).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

from webchat.middleware import SyncAndAsync

# Most of the site's static files (CSS, JS, fonts) fit in one block: one thread trip.
BLOCK_SIZE = 256 * 1024

# WhiteNoise reads every static file's size and headers, and looks for its compressed
# copies, when its middleware is made. A server makes it once; the test client makes it for
# each client (an eighth of the page tests' CPU). So the table is made once per process
# for the settings it is made with.
_TABLES: dict[tuple[object, ...], dict[str, Any]] = {}


def _settings_key() -> tuple[object, ...]:
    names = [name for name in dir(settings) if name.startswith(("WHITENOISE_", "STATIC"))]
    return (
        settings.DEBUG,
        settings.FORCE_SCRIPT_NAME,
        repr(settings.STORAGES),
        repr(settings.INSTALLED_APPS),  # the apps' static folders are among the finders'
        *((n, repr(getattr(settings, n))) for n in sorted(names)),
    )


class StaticFilesMiddleware(SyncAndAsync, WhiteNoiseMiddleware):
    def __init__(self, get_response: Any = None, **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.mode_set(get_response)

    def update_files_dictionary(self, root: str, prefix: str) -> None:
        self._add_table(("root", root, prefix), partial(super().update_files_dictionary, root, prefix))

    def add_files_from_finders(self) -> None:
        self._add_table(("finders", self.static_prefix), super().add_files_from_finders)

    def _add_table(self, what: tuple[object, ...], make: Callable[[], None]) -> None:
        key = (*what, _settings_key())
        table = _TABLES.get(key)
        if table is None:
            kept, self.files = self.files, {}
            make()
            table, self.files = self.files, kept
            _TABLES[key] = table
        self.files.update(table)

    def call_sync(self, request: HttpRequest) -> Any:
        return WhiteNoiseMiddleware.__call__(self, request)

    async def call_async(self, request: HttpRequest) -> Any:
        if self.autorefresh:  # DEBUG: looks on disk
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        response, file, first = await sync_to_async(self._serve_opened, thread_sensitive=False)(static_file, request)
        # The file's close is already among the response's closers (Django calls them).
        response.streaming_content = _blocks(file, first)
        return response

    def _serve_opened(self, static_file: Any, request: HttpRequest) -> tuple[HttpResponseBase, IO[bytes] | None, bytes]:
        """WhiteNoise's response, its file and the file's first block (no file: no body,
        as for HEAD or 304)."""
        response = self.serve(static_file, request)
        file = response.file_to_stream
        return response, file, (file.read(BLOCK_SIZE) if file is not None else b"")


async def _blocks(file: IO[bytes] | None, first: bytes) -> AsyncIterator[bytes]:
    block = first
    while block:
        yield block
        if file is None or len(block) < BLOCK_SIZE:
            return
        block = await sync_to_async(file.read, thread_sensitive=False)(BLOCK_SIZE)
