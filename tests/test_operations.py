"""Production readiness: health check, deploy checks, JSON logs with request ids."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.billing.models import JobRun

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


def test_log_lines_are_json_with_the_request_id(client: Client, capsys: Any) -> None:
    from webchat.logs import JsonFormatter, RequestIdFilter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-abc.123")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404 and response["X-Request-ID"] == "req-abc.123"
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["request_id"] == "req-abc.123" and line["level"] == "WARNING" and "Not Found" in line["message"]


def test_a_malformed_request_id_is_replaced(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nInjected: yes")
    assert response["X-Request-ID"] != "bad id\nInjected: yes" and len(response["X-Request-ID"]) == 32
