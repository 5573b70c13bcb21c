"""`python manage.py rollup_usage [--since DATE]`: rebuild the usage rollups by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.billing.services import usage_rollup


class Command(BaseCommand):
    help = "Roll the ledger up per hour and per day (idempotent: rebuilds the buckets it covers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="YYYY-MM-DD (site time zone); default: yesterday.")

    def handle(self, *args: Any, since: str | None = None, **options: Any) -> None:
        if since:
            try:
                day = datetime.strptime(since, "%Y-%m-%d").date()
            except ValueError:
                raise CommandError("--since must be a date like 2026-09-01") from None
            start = timezone.make_aware(datetime.combine(day, time.min))
        else:
            start = timezone.now() - timedelta(days=1)
        written = usage_rollup(since=start)
        self.stdout.write(
            f"rollups rebuilt since {timezone.localtime(start):%Y-%m-%d %H:%M}: "
            f"{written['hour']} hourly rows, {written['day']} daily rows"
        )
