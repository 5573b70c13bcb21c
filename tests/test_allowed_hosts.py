"""ALLOWED_HOSTS with a wildcard: `check --deploy` reports it, and the websocket origin
check never lets every origin in with DEBUG off. (The web server's refusal to start with
one: tests/test_settings.py.)"""

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


async def socket_accepted(application: Any, people: People, origin: bytes) -> bool:
    cookie = await sync_to_async(session_cookie_for)(people.student)
    communicator = socket_open(
        application,
        "/ws/chat/",
        [(b"origin", origin), (b"host", b"127.0.0.1"), (b"cookie", f"sessionid={cookie}".encode())],
    )
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
