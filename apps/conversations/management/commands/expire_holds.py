"""`python manage.py expire_holds`: settle the holds of requests that died, by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.conversations.tasks import expire_holds


class Command(BaseCommand):
    help = "Settle holds older than HOLD_EXPIRY_SECONDS from what is known, and label their replies."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"settled: {expire_holds()}")
