"""The Celery app. Periodic work (usage rollups, expiring holds) is registered here."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webchat.settings")

app = Celery("webchat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule lives here, one commented entry per periodic job (filled in by the
# billing work).
app.conf.beat_schedule = {}
