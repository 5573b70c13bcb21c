"""`python manage.py api_key_create --user USERNAME`: a new personal key, printed once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.accounts.models import User
from apps.gateway.services import api_key_create


class Command(BaseCommand):
    help = "Create a personal API key for a user and print only the key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--name", default="", help="a name to tell the key apart")
        parser.add_argument("--expires-days", type=int, default=None, help="days until the key expires")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be 1 or more")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        _, key = api_key_create(user=user, name=options["name"], expires_at=expires_at)
        self.stdout.write(key)
