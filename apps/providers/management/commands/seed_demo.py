"""Demo people and a class for trying webchat out: `python manage.py seed_demo`.

It lives in providers, not accounts, because it also makes sure of the demo model: accounts
sits below providers and may not call it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert
from apps.providers.services import catalog_demo_ensure, catalog_env_model_ensure

DEFAULT_PASSWORD = "demo-pass-2026"
DEMO_CLASS = "Demo class"
DEMO_PEOPLE = [
    ("admin", User.Role.ADMIN, "Admin"),
    ("teacher", User.Role.TEACHER, "Ms. Li (teacher)"),
    ("student1", User.Role.STUDENT, "Student One"),
    ("student2", User.Role.STUDENT, "Student Two"),
    ("student3", User.Role.STUDENT, "Student Three"),
]


class Command(BaseCommand):
    help = "Create the demo users, a class and the demo model (idempotent) and print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            help=f"Set (or reset) every demo user's password. New users get {DEFAULT_PASSWORD!r} otherwise.",
        )

    @transaction.atomic
    def handle(self, *args: Any, password: str | None = None, **options: Any) -> None:
        created = 0
        users: dict[str, User] = {}
        for username, role, display_name in DEMO_PEOPLE:
            exists = User.objects.filter(username=username).exists()
            # A new user always gets a password; an existing one only when asked to reset.
            new_password = password if password is not None else (None if exists else DEFAULT_PASSWORD)
            users[username], made = user_upsert(
                username=username, role=role, display_name=display_name, password=new_password
            )
            created += made
        classroom, made = classroom_get_or_create(name=DEMO_CLASS, teacher=users["teacher"])
        created += made
        for username in ("student1", "student2", "student3"):
            enrollment_add(classroom=classroom, student=users[username])
        created += catalog_demo_ensure()
        env_model = catalog_env_model_ensure()

        shown = password if password is not None else DEFAULT_PASSWORD
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} rows created)."))
        self.stdout.write("Demo logins (username / password):")
        for username, role, _ in DEMO_PEOPLE:
            self.stdout.write(f"  {username:<9} / {shown}   ({role})")
        if password is None:
            self.stdout.write("  (a password changed since seeding stays as it is; --password resets them all)")
        if env_model is not None:
            self.stdout.write(f"Offering {env_model.route_name} from OPENAI_BASE_URL (MODEL_NAME).")
