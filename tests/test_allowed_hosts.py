"""ALLOWED_HOSTS with a wildcard: `check --deploy` reports it, and the websocket origin
check never lets every origin in with DEBUG off. (The web server's refusal to start with
one: tests/test_settings.py.) The socket is the page's own: another port of the same host,
or an Origin that names another host than the socket was opened on, is refused."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import People, session_cookie_for, socket_open
from webchat.hosts import websocket_allowed_origins

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "prod-" + "s3cr3t" * 10,
    "SECURE_HTTPS": "True",
    "KEY_ENCRYPTION_KEYS": "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=",
    "DJANGO_SETTINGS_MODULE": "webchat.settings",
}


def check_deploy(allowed_hosts: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PRODUCTION, "ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("allowed_hosts", ["*", "chat.school.example,*.school.example"])
def test_check_deploy_reports_a_wildcard_in_allowed_hosts(allowed_hosts: str) -> None:
    result = check_deploy(allowed_hosts)
    assert result.returncode == 1
    assert "webchat.E001" in result.stderr and "ALLOWED_HOSTS" in result.stderr


def test_check_deploy_accepts_a_leading_dot_domain() -> None:
    result = check_deploy("chat.school.example,.school.example")
    assert result.returncode == 0, result.stdout + result.stderr


async def socket_accepted(
    application: Any, people: People, origin: bytes | None, host: bytes = b"127.0.0.1", *more: tuple[bytes, bytes]
) -> bool:
    cookie = await sync_to_async(session_cookie_for)(people.student)
    headers = [(b"host", host), (b"cookie", f"sessionid={cookie}".encode()), *more]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = socket_open(application, "/ws/chat/", headers)
    accepted, _ = await communicator.connect()
    if accepted:
        await communicator.disconnect()
    return accepted


@pytest.mark.django_db(transaction=True)
async def test_a_star_in_allowed_hosts_never_lets_another_sites_socket_in_with_debug_off(
    people: People, settings: Any
) -> None:
    """As if the start-up refusal had been bypassed: the ASGI application built with "*" in
    ALLOWED_HOSTS still refuses a socket from another site, and serves its own."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*", "127.0.0.1"]
    application = runpy.run_module("webchat.asgi")["application"]  # built afresh, as at start-up

    assert await socket_accepted(application, people, b"http://evil.example") is False
    assert await socket_accepted(application, people, b"http://127.0.0.1") is True


def test_websocket_origins_keep_a_leading_dot_domain_and_drop_wildcards_in_production() -> None:
    hosts = ["*", "chat.school.example", ".school.example", "*.evil.example"]
    assert websocket_allowed_origins(allowed_hosts=hosts, debug=False) == ["chat.school.example", ".school.example"]
    assert websocket_allowed_origins(allowed_hosts=[], debug=True) == ["localhost", "127.0.0.1", "[::1]"]


@pytest.mark.django_db(transaction=True)
async def test_a_page_on_another_port_of_the_same_host_cannot_open_the_socket(people: People, settings: Any) -> None:
    """A student's own server on 127.0.0.1:5000 (or another service on the school's host)
    is the same host name but another origin: its page cannot chat as the student."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["127.0.0.1", "chat.school.example"]
    settings.CSRF_TRUSTED_ORIGINS = []
    application = runpy.run_module("webchat.asgi")["application"]

    assert await socket_accepted(application, people, b"http://127.0.0.1:8000", b"127.0.0.1:8000") is True
    assert await socket_accepted(application, people, b"http://127.0.0.1:5000", b"127.0.0.1:8000") is False
    assert await socket_accepted(application, people, b"http://127.0.0.1", b"127.0.0.1:8000") is False
    assert await socket_accepted(application, people, b"http://127.0.0.1:8000", b"127.0.0.1") is False
    # default ports: https://chat.school.example is port 443, whether or not the Host says so
    assert await socket_accepted(application, people, b"https://chat.school.example", b"chat.school.example") is True
    assert (
        await socket_accepted(application, people, b"https://chat.school.example", b"chat.school.example:443") is True
    )
    assert (
        await socket_accepted(application, people, b"https://chat.school.example:8443", b"chat.school.example") is False
    )
    # both names are allowed hosts, but the page is not the socket's own
    assert await socket_accepted(application, people, b"https://chat.school.example", b"127.0.0.1") is False
    # no Origin (not a browser), or one that does not parse
    assert await socket_accepted(application, people, None, b"127.0.0.1") is False
    assert await socket_accepted(application, people, b"http://127.0.0.1:port", b"127.0.0.1") is False
    assert await socket_accepted(application, people, b"null", b"127.0.0.1") is False


@pytest.mark.django_db(transaction=True)
async def test_a_trusted_origin_or_forwarded_host_opens_the_socket_behind_a_proxy(
    people: People, settings: Any
) -> None:
    """Behind a proxy that does not pass the browser's Host on, the site names its public
    origin in CSRF_TRUSTED_ORIGINS (as Django's form check needs too), or trusts the proxy's
    X-Forwarded-Host with USE_X_FORWARDED_HOST."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["chat.school.example", ".school.example", "web"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.school.example", "https://*.school.example"]
    application = runpy.run_module("webchat.asgi")["application"]

    assert await socket_accepted(application, people, b"https://chat.school.example", b"web:8000") is True
    assert await socket_accepted(application, people, b"https://room3.school.example", b"web:8000") is True
    assert await socket_accepted(application, people, b"http://chat.school.example", b"web:8000") is False
    assert await socket_accepted(application, people, b"https://chat.school.example:444", b"web:8000") is False

    settings.CSRF_TRUSTED_ORIGINS = []
    settings.USE_X_FORWARDED_HOST = True
    application = runpy.run_module("webchat.asgi")["application"]
    forwarded = (b"x-forwarded-host", b"chat.school.example")
    assert await socket_accepted(application, people, b"https://chat.school.example", b"web:8000", forwarded) is True
    assert await socket_accepted(application, people, b"https://other.school.example", b"web:8000", forwarded) is False
