"""No Docker engine runs here, so the compose file is checked against what the tests run
directly: the same processes (uvicorn on webchat.asgi, a Celery worker, beat), the same
services (PostgreSQL, Redis), health checks, one-time migrations, a websocket-aware proxy,
and every variable it needs documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_health_checks_and_named_volumes() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat", "proxy"}
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name
    assert set(compose()["volumes"]) >= {"postgres-data", "redis-data", "static"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_app_services_run_what_the_tests_run() -> None:
    services = compose()["services"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "webchat", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "webchat", "beat"]
    assert "migrate --no-input" in " ".join(services["migrate"]["command"])
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"uvicorn", "webchat.asgi:application"' in dockerfile and '"--workers"' in dockerfile


def test_both_servers_hold_client_frames_to_what_a_chat_frame_can_be() -> None:
    """uvicorn's default takes frames of 16 MiB into memory before the app can refuse them:
    ten sockets sending three each took a worker from 107 to 542 MB."""
    from apps.conversations.frames import MAX_FRAME_CHARS

    dockerfile = (ROOT / "Dockerfile").read_text()
    embedded = (ROOT / "scripts" / "run-embedded.sh").read_text()
    assert '"--ws-max-size", "262144"' in dockerfile and "--ws-max-size 262144" in embedded
    assert MAX_FRAME_CHARS * 4 <= 262144  # a frame at the limit, every character 4 bytes of UTF-8


def test_proxy_passes_websockets_and_serves_static_files() -> None:
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    assert "alias /static/" in nginx and "X-Forwarded-Proto" in nginx and "X-Request-ID" in nginx


def test_the_proxy_names_the_client_itself_so_no_client_can_pick_its_address() -> None:
    """The web service takes the first X-Forwarded-For entry as the client's address (the
    login lockout and the demo's limit count per address): nginx, the edge, writes it."""
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    forwarded = re.findall(r"proxy_set_header X-Forwarded-For (\S+);", nginx)
    assert forwarded and set(forwarded) == {"$remote_addr"}


def test_the_proxy_passes_the_host_with_its_port() -> None:
    """Served on another port (HTTP_PORT=8080), a browser's Origin is http://host:8080; nginx's
    $host drops the port, and Django's CSRF check then refused every form, the login first."""
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    hosts = re.findall(r"proxy_set_header Host (\S+);", nginx)
    assert hosts and set(hosts) == {"$http_host"}


def test_every_variable_the_compose_file_reads_is_documented() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= documented, used - documented


def test_both_servers_keep_idle_connections_longer_than_those_reusing_them() -> None:
    """The provider pool reuses an idle connection for 30 s (the demo model is the server
    itself) and nginx its upstream ones for 60 s; at uvicorn's default 5 s a turn could
    reuse a connection just as the server closed it."""
    import re

    from apps.providers.netguard import POOL_LIMITS

    dockerfile = (ROOT / "Dockerfile").read_text()
    embedded = (ROOT / "scripts" / "run-embedded.sh").read_text()
    kept = [int(m) for m in re.findall(r'--timeout-keep-alive"?,? "?(\d+)', dockerfile + embedded)]
    assert len(kept) == 2 and min(kept) > max(POOL_LIMITS.keepalive_expiry, 60)
