"""The Celery app. Periodic work (usage rollups, expiring holds, the ledger balance check)
is registered here."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webchat.settings")

app = Celery("webchat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402  (after the settings module is named)


@worker_init.connect
@beat_init.connect
def _refuse_misconfigured(**kwargs: object) -> None:
    from webchat.startup import refuse_to_start_if_misconfigured

    refuse_to_start_if_misconfigured()


# The beat schedule lives here, one entry per periodic job; `expires` sits just under each
# period so a backlog never piles up runs. Each job can be run by hand too (see comments).
app.conf.beat_schedule = {
    # Ledger -> hourly and daily rollups for the teacher dashboards.
    # By hand: python manage.py rollup_usage [--since DATE]
    "rollup-usage": {
        "task": "billing.rollup_usage",
        "schedule": float(settings.ROLLUP_EVERY_SECONDS),
        "options": {"expires": settings.ROLLUP_EVERY_SECONDS * 0.95},
    },
    # Settle holds (and label replies) of requests whose worker died mid-call. A
    # conversations task: it starts from the replies, which billing does not know.
    # By hand: python manage.py expire_holds
    "expire-holds": {"task": "conversations.expire_holds", "schedule": 60.0, "options": {"expires": 55}},
    # Usage counters and rollups against the ledger; differences shown in admin and on
    # /healthz (a warning), and logged. By hand: python manage.py check_ledger_balance
    "ledger-balance": {
        "task": "billing.check_ledger_balance",
        "schedule": float(settings.BALANCE_CHECK_EVERY_SECONDS),
        "options": {"expires": settings.BALANCE_CHECK_EVERY_SECONDS * 0.95},
    },
    # Results kept for /v1 retries with an Idempotency-Key, once their 24 hours are over.
    "expire-idempotent-requests": {
        "task": "gateway.expire_idempotent_requests",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
}
