"""Static files through the real ASGI application (webchat/static_files.py): the bytes on
disk, in blocks read off the event loop, with no warning from Django's ASGI handler about a
sync iterator (it would read the whole file into a list on a thread)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings

from webchat import static_files

pytestmark = pytest.mark.django_db


async def asgi_get(path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    from webchat.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    body, parts = b"", 0
    while True:
        message = await communicator.receive_output(timeout=10)
        body += message.get("body", b"")
        parts += bool(message.get("body"))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=10)
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body, "parts": parts}


def collected(name: str) -> Path:
    path = Path(settings.STATIC_ROOT) / name
    assert path.exists(), "make test collects the static files (make assets)"
    return path


async def test_a_static_file_comes_whole_with_no_sync_iterator_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await asgi_get("/static/css/app.css")

    assert response["status"] == 200
    assert response["body"] == collected("css/app.css").read_bytes()
    assert [str(w.message) for w in caught if "iterator" in str(w.message)] == []


async def test_a_file_larger_than_a_block_comes_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    path = collected("vendor/katex/katex.min.js")
    monkeypatch.setattr(static_files, "BLOCK_SIZE", 64 * 1024)

    response = await asgi_get("/static/vendor/katex/katex.min.js")

    assert response["body"] == path.read_bytes()
    assert response["parts"] == -(-path.stat().st_size // (64 * 1024))
    assert int(response["headers"][b"Content-Length"]) == path.stat().st_size


async def test_a_range_a_head_and_a_not_modified_are_answered_as_whitenoise_does() -> None:
    data = collected("css/app.css").read_bytes()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ranged = await asgi_get("/static/css/app.css", headers=[(b"range", b"bytes=10-99")])
        head = await asgi_get("/static/css/app.css", method="HEAD")
        etag = (await asgi_get("/static/css/app.css"))["headers"][b"ETag"]
        again = await asgi_get("/static/css/app.css", headers=[(b"if-none-match", etag)])

    assert [str(w.message) for w in caught if "iterator" in str(w.message)] == []

    assert ranged["status"] == 206 and ranged["body"] == data[10:100]
    assert head["status"] == 200 and head["body"] == b"" and int(head["headers"][b"Content-Length"]) == len(data)
    assert again["status"] == 304 and again["body"] == b""


def test_the_static_files_are_read_once_per_process_for_the_same_settings() -> None:
    first = static_files.StaticFilesMiddleware(lambda request: None)
    second = static_files.StaticFilesMiddleware(lambda request: None)

    assert "/static/css/app.css" in first.files
    assert second.files.keys() == first.files.keys()
    assert all(second.files[url] is first.files[url] for url in first.files)
    assert second.files is not first.files


def test_other_settings_get_a_table_of_their_own(settings: Any) -> None:
    before = static_files.StaticFilesMiddleware(lambda request: None)
    settings.WHITENOISE_MAX_AGE = 1234

    after = static_files.StaticFilesMiddleware(lambda request: None)

    def cache_control(middleware: static_files.StaticFilesMiddleware) -> str:
        response = middleware.files["/static/css/app.css"].get_response("GET", {})
        return dict(response.headers)["Cache-Control"]

    assert "max-age=1234" in cache_control(after)
    assert "max-age=1234" not in cache_control(before)
