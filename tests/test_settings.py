"""Settings come from the environment; production refuses to start without a real secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test starts Django in a subprocess with an environment of its own.
pytestmark = pytest.mark.backend_free

ROOT = Path(__file__).resolve().parent.parent


def serve(**env: str) -> subprocess.CompletedProcess[str]:
    """Load the ASGI application, as the web server does at start."""
    return start(_code="import webchat.asgi; print('served')", **env)


def start(_code: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "SECRET_KEY",
            "DEBUG",
            "KEY_ENCRYPTION_KEYS",
            "REDIS_URL",
            "DATABASE_URL",
            "TIME_ZONE",
            "LANGUAGE_CODE",
            "ALLOWED_HOSTS",
        )
    }
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            _code
            or "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEBUG, settings.TIME_ZONE, settings.LANGUAGE_CODE, settings.CHANNEL_LAYERS['default']['BACKEND'])",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "webchat.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_a_secret_key_refuses_to_start_with_one_line() -> None:
    result = serve(DEBUG="False")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SECRET_KEY" in lines[0] and "refuses to start" in lines[0]


def test_production_with_a_short_secret_key_refuses_to_start() -> None:
    result = serve(DEBUG="False", SECRET_KEY="short")
    assert result.returncode == 1
    assert "SECRET_KEY" in result.stderr


MASTER = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="


def test_production_without_master_keys_refuses_to_start() -> None:
    result = serve(DEBUG="False", SECRET_KEY="k" * 50)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "KEY_ENCRYPTION_KEYS" in result.stderr


def test_a_malformed_master_key_refuses_to_start() -> None:
    result = serve(DEBUG="True", KEY_ENCRYPTION_KEYS="not-a-key")
    assert result.returncode == 1
    assert "KEY_ENCRYPTION_KEYS" in result.stderr and "not-a-key" not in result.stderr


def test_production_with_a_real_secret_key_starts_with_the_defaults() -> None:
    result = start(DEBUG="False", SECRET_KEY="k" * 50, KEY_ENCRYPTION_KEYS=MASTER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "Asia/Shanghai", "zh-hans", "channels.layers.InMemoryChannelLayer"]


def test_debug_starts_without_a_secret_and_redis_url_selects_redis_layer() -> None:
    result = start(DEBUG="True", REDIS_URL="redis://127.0.0.1:6379/0", TIME_ZONE="UTC", LANGUAGE_CODE="en")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "UTC", "en", "channels_redis.core.RedisChannelLayer"]


CELERY_TRANSPORT = (
    "from webchat.celery import app; "
    "print(type(app.connection_for_write().transport).__module__, app.conf.broker_url.split(':')[0])"
)


def test_without_redis_the_worker_uses_the_broker_that_writes_whole_messages(tmp_path: Path) -> None:
    result = start(_code=CELERY_TRANSPORT, DEBUG="True", CELERY_DATA_DIR=str(tmp_path), CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["webchat.filebroker", "filesystem"]


def test_with_redis_the_worker_uses_kombus_redis_transport(tmp_path: Path) -> None:
    result = start(_code=CELERY_TRANSPORT, DEBUG="True", REDIS_URL="redis://127.0.0.1:6399/0", CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["kombu.transport.redis", "redis"]


def test_a_good_production_configuration_serves() -> None:
    result = serve(DEBUG="False", SECRET_KEY="k" * 50, KEY_ENCRYPTION_KEYS=MASTER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"


def test_production_with_allowed_hosts_star_refuses_to_start_with_one_line() -> None:
    result = serve(DEBUG="False", SECRET_KEY="k" * 50, KEY_ENCRYPTION_KEYS=MASTER, ALLOWED_HOSTS="*")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "refuses to start" in lines[0] and "ALLOWED_HOSTS" in lines[0]


def test_production_refuses_any_allowed_hosts_entry_holding_a_star() -> None:
    result = serve(
        DEBUG="False",
        SECRET_KEY="k" * 50,
        KEY_ENCRYPTION_KEYS=MASTER,
        ALLOWED_HOSTS="chat.school.example,*.school.example",
    )
    assert result.returncode == 1
    assert "ALLOWED_HOSTS contains *.school.example;" in result.stderr


def test_production_serves_a_leading_dot_domain_in_allowed_hosts() -> None:
    result = serve(
        DEBUG="False",
        SECRET_KEY="k" * 50,
        KEY_ENCRYPTION_KEYS=MASTER,
        ALLOWED_HOSTS="chat.school.example,.school.example",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"


def test_debug_may_serve_allowed_hosts_star_for_a_classroom_demo() -> None:
    result = serve(DEBUG="True", ALLOWED_HOSTS="*")
    assert result.returncode == 0, result.stderr


def test_the_celery_worker_refuses_too() -> None:
    result = start(
        _code="from webchat.celery import app; from celery.signals import worker_init; worker_init.send(sender=None)",
        DEBUG="False",
    )
    assert result.returncode == 1 and "refuses to start" in result.stderr


def test_management_commands_still_run_without_a_secret() -> None:
    # The embedded default database, whichever the run uses: this module is backend_free.
    unset = ("SECRET_KEY", "DEBUG", "KEY_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env={**clean, "DEBUG": "False"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_socket_waiting_on_redis_outlasts_the_channel_layers_blocking_read() -> None:
    # channels-redis waits for a socket's messages with a blocking BZPOPMIN of brpop_timeout
    # (5 s); redis-py gives up on a read after its socket timeout, 5 s by default as well,
    # so under load the socket dropped mid-reply. The served default must be longer.
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from channels_redis.core import RedisChannelLayer; "
        "(host,) = settings.CHANNEL_LAYERS['default']['CONFIG']['hosts']; "
        "print(host['socket_timeout'] > 2 * RedisChannelLayer.brpop_timeout, host['address'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "CHANNEL_LAYER_SOCKET_TIMEOUT"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "REDIS_URL": "redis://127.0.0.1:6399/0", "DJANGO_SETTINGS_MODULE": "webchat.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["True", "redis://127.0.0.1:6399/0"], result.stderr


def test_a_hold_expiry_shorter_than_a_call_may_run_refuses_to_start() -> None:
    """A hold expired while its call still streams would be settled for its prompt alone."""
    result = serve(
        DEBUG="False",
        SECRET_KEY="k" * 50,
        KEY_ENCRYPTION_KEYS=MASTER,
        LLM_TOTAL_TIMEOUT="180",
        HOLD_EXPIRY_SECONDS="200",
    )
    assert result.returncode == 1 and "HOLD_EXPIRY_SECONDS" in result.stderr
    assert (
        serve(DEBUG="False", SECRET_KEY="k" * 50, KEY_ENCRYPTION_KEYS=MASTER, HOLD_EXPIRY_SECONDS="240").returncode == 0
    )
