"""/healthz: is this instance able to serve? For the proxy, compose and monitoring."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - reported by name, never raised to the caller
        return type(exc).__name__
    return None


def _redis() -> str | None:
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when healthy; 503 naming what failed: database, redis, or rollups (the last
    successful rollup is older than three periods). `ledger_balance` is the last balance
    check's finding, a warning that leaves the status alone: a difference in the books is
    for an admin to look into, not a reason to take this instance out of service."""
    failing: dict[str, str] = {}
    problem = _database()
    if problem:
        failing["database"] = problem
    if settings.REDIS_URL:
        problem = _redis()
        if problem:
            failing["redis"] = problem
    last_rollup = None
    ledger_balance = "unknown"
    if "database" not in failing:
        from apps.billing.models import JobRun
        from apps.billing.selectors import balance_check_latest

        check = balance_check_latest()
        if check is None:
            ledger_balance = "not checked yet"
        else:
            ledger_balance = f"warning: {check.difference_count} differences" if check.difference_count else "ok"

        run = JobRun.objects.filter(name="rollup_usage").first()
        last_rollup = run.last_success_at if run else None
        stale_after = timedelta(seconds=3 * settings.ROLLUP_EVERY_SECONDS)
        if last_rollup is not None and timezone.now() - last_rollup > stale_after:
            failing["rollups"] = f"last success {last_rollup.isoformat()}"
    body = {
        "status": "ok" if not failing else "failing",
        "failing": failing,
        "database": connection.vendor,
        "redis": bool(settings.REDIS_URL),
        "last_rollup": last_rollup.isoformat() if last_rollup else None,
        "ledger_balance": ledger_balance,
    }
    return JsonResponse(body, status=200 if not failing else 503)
