"""Production readiness: health check, deploy checks, JSON logs with request ids."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.test import AsyncClient, Client
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.billing.models import JobRun
from apps.gateway.services import api_key_create
from tests.conftest import PASSWORD, People
from webchat.checks import django_middleware_checks

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_healthz_is_200_with_the_last_rollup(client: Client) -> None:
    JobRun.objects.create(name="rollup_usage", last_success_at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["last_rollup"] and body["failing"] == {}


def test_healthz_names_stale_rollups(client: Client) -> None:
    JobRun.objects.create(name="rollup_usage", last_success_at=timezone.now() - timedelta(hours=3))
    response = client.get("/healthz")
    assert response.status_code == 503 and "rollups" in response.json()["failing"]


def test_healthz_names_an_unreachable_redis(client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/healthz")
    assert response.status_code == 503 and "redis" in response.json()["failing"]


def test_check_deploy_passes_with_production_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG",)}
    env.update(
        {
            "DEBUG": "False",
            "SECRET_KEY": "prod-" + "s3cr3t" * 10,
            "SECURE_HTTPS": "True",
            "KEY_ENCRYPTION_KEYS": "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=",
            "ALLOWED_HOSTS": "chat.school.example",
            "DJANGO_SETTINGS_MODULE": "webchat.settings",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def json_request_log() -> Iterator[io.StringIO]:
    """What django.request logs, as the JSON lines the servers write."""
    from webchat.logs import JsonFormatter, RequestIdFilter

    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield written
    logger.removeHandler(handler)


def test_log_lines_are_json_with_the_request_id(client: Client, json_request_log: io.StringIO) -> None:
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-abc.123")

    assert response.status_code == 404 and response["X-Request-ID"] == "req-abc.123"
    line = json.loads(json_request_log.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "req-abc.123" and line["level"] == "WARNING" and "Not Found" in line["message"]


async def test_an_asgi_request_keeps_its_id_to_its_log_line(
    async_client: AsyncClient, json_request_log: io.StringIO
) -> None:
    response = await async_client.get("/no-such-page/", headers={"X-Request-ID": "req-async.456"})

    assert response.status_code == 404 and response["X-Request-ID"] == "req-async.456"
    line = json.loads(json_request_log.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "req-async.456" and "Not Found" in line["message"]


def test_every_middleware_runs_in_the_async_chain() -> None:
    # One sync-only middleware makes Django run every request of an ASGI server (the /v1
    # API's included) through a thread and back.
    sync_only = [path for path in settings.MIDDLEWARE if not getattr(import_string(path), "async_capable", False)]

    assert sync_only == []


@pytest.mark.django_db(transaction=True)
async def test_an_async_view_makes_no_thread_trip_for_middleware(
    async_client: AsyncClient, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Django's MiddlewareMixin sends each hook to the request's thread in the async chain;
    # ours run them in place (webchat/django_middleware.py), so a /v1 call goes to a thread
    # only for its own database work.
    key = (await sync_to_async(api_key_create)(user=people.student, name="t"))[1]
    sent: list[str] = []
    original = SyncToAsync.__init__

    def recording(self: SyncToAsync, func: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(getattr(func, "__name__", type(func).__name__))
        original(self, func, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__init__", recording)
    response = await async_client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200 and response.json()["object"] == "list"
    assert sent and [name for name in sent if name.startswith("process_")] == []


@pytest.mark.django_db(transaction=True)
async def test_a_session_changed_in_the_async_chain_is_saved(async_client: AsyncClient, people: People) -> None:
    # The session middleware saves a changed session on the request's thread, as before.
    response = await async_client.post("/accounts/login/", {"username": people.student.username, "password": PASSWORD})
    assert response.status_code == 302

    assert (await async_client.get("/")).status_code == 200


def test_deploy_checks_see_the_subclasses_of_djangos_middlewares(settings: Any) -> None:
    # Django's deploy checks look for its middlewares by path; HSTS and the rest must still
    # be checked with ours in MIDDLEWARE, and a missing one still reported.
    settings.SECURE_HSTS_SECONDS = 0
    assert "security.W004" in {message.id for message in django_middleware_checks()}

    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if not path.endswith(".SecurityMiddleware")]
    found = {message.id for message in django_middleware_checks()}
    assert "webchat.W001" in found and "security.W004" not in found


def test_a_malformed_request_id_is_replaced(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nInjected: yes")
    assert response["X-Request-ID"] != "bad id\nInjected: yes" and len(response["X-Request-ID"]) == 32
