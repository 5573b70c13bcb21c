"""`python manage.py rotate_keys`: re-seal every stored key under the first master key.

Put the new master key first in KEY_ENCRYPTION_KEYS (keep the old ones after it), run this,
then drop the old keys once it reports nothing left to rotate. Safe to run again after an
interruption: rows already under the new key are skipped.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.providers.services import credentials_rotate


class Command(BaseCommand):
    help = "Re-encrypt every credential under the first key of KEY_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = credentials_rotate()
        self.stdout.write(
            f"rotated: {counts['rotated']}, already current: {counts['current']}, cannot open: {counts['failed']}"
        )
        if counts["failed"]:
            raise CommandError(
                f"{counts['failed']} credential(s) could not be opened with any key in KEY_ENCRYPTION_KEYS; "
                "add the master key they were sealed with and run again"
            )
