"""A request body past REQUEST_MAX_BODY_BYTES is refused before it is stored: Django's ASGI
handler would copy it all into a temporary file before any view or login check, so anyone
could fill the server's disk through any URL."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any

import openai
import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def _exchange(live: LiveServer, head: str, body_parts: list[bytes] = (), pause: float = 0.0) -> tuple[int, str, str]:
    """Send a request's head and body parts over a raw socket; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: as a real client sees it
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):  # the 413 closes the connection
                data += chunk
    head_part, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ")[1])
    return status, head_part.decode("latin-1").lower(), rest.decode()


def _open_files_in_tmp() -> set[str]:
    """Temporary files this process holds open (Django spools a large body into one)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/tmp/") and "(deleted)" in target:
            found.add(target)
    return found


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/accounts/login/", "/demo/v1/chat/completions"])
def test_a_body_announced_too_large_is_refused_before_it_is_sent(
    live_asgi: LiveServer, path: str, settings: Any
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**9}\r\nAccept-Language: en\r\n\r\n"
    )
    before = _open_files_in_tmp()
    status, headers, body = _exchange(live_asgi, head)  # not a byte of the body sent
    assert status == 413
    assert _open_files_in_tmp() <= before
    if path.startswith(("/v1/", "/demo/v1/")):
        error = json.loads(body)["error"]
        assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
        assert str(settings.REQUEST_MAX_BODY_BYTES) in error["message"]
    else:
        assert "too large" in body


def test_a_chunked_body_is_cut_off_once_past_the_limit(live_asgi: LiveServer, settings: Any) -> None:
    """No Content-Length: the body is counted as it arrives, and refused past the limit
    (the client was still sending)."""
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    count = settings.REQUEST_MAX_BODY_BYTES // len(piece) + 2  # just past it: all of it read, no reset
    status, _headers, body = _exchange(live_asgi, head, [chunk] * count)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"


def test_the_message_follows_accept_language(live_asgi: LiveServer) -> None:
    head = "POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\nAccept-Language: zh-CN,zh;q=0.9\r\n\r\n"
    status, _headers, body = _exchange(live_asgi, head)
    assert status == 413 and "请求太大" in body


def test_the_sdk_raises_its_413_error_and_a_request_within_the_limit_is_served(
    live_asgi: LiveServer, settings: Any, fake_model: Any, people: Any
) -> None:
    from apps.gateway.services import api_key_create

    _row, key = api_key_create(user=people.student)
    client = openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=0)
    huge = "word " * (settings.REQUEST_MAX_BODY_BYTES // 5 + 10)
    with pytest.raises(openai.APIStatusError) as error:
        client.chat.completions.create(model="fakeai/fake-model", messages=[{"role": "user", "content": huge}])
    assert error.value.status_code == 413 and error.value.code == "request_too_large"
    reply = client.chat.completions.create(model="fakeai/fake-model", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello, class!"
