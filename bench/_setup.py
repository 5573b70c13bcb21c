"""Shared start-up for the benchmarks: Django on a throwaway database.

DATABASE_URL picks the database (default: a temporary SQLite file). The schema is migrated
fresh; nothing outside that database is touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_SECRET = "bench-only-secret-key-not-for-production-0123456789"
BENCH_MASTER_KEY = "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE="


def server_env(port: int, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's webchat server: production's (DEBUG off) on this
    host, throwaway secrets unless real ones are set, quiet logs; `extra` on top."""
    env = dict(os.environ)
    env.update(
        {
            "DEBUG": "False",
            "SECRET_KEY": env.get("SECRET_KEY", BENCH_SECRET),
            "KEY_ENCRYPTION_KEYS": env.get("KEY_ENCRYPTION_KEYS", BENCH_MASTER_KEY),
            "ALLOWED_HOSTS": "127.0.0.1",
            "INTERNAL_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def django_up() -> str:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='webchat-bench-')}/bench.sqlite3"
    os.environ.setdefault("DEBUG", "True")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webchat.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    return f"{connection.vendor} {connection.settings_dict['NAME']}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]
