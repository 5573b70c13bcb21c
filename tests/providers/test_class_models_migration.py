"""The migrations that moved a class's allowed and default models from accounts.Classroom to
providers.ClassModelAccess keep every class's choice, forwards and backwards."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0006_enrollment_verbose_names"), ("providers", "0005_credential_check_result_choices")]
AFTER = [
    ("accounts", "0007_classroom_models_moved_to_providers"),
    ("providers", "0007_classmodelaccess_copy_from_classroom"),
]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate the test database to `targets`; the app registry as of then."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_each_class_keeps_its_models_through_the_move_and_back() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = migrate(BEFORE)
        Provider = old.get_model("providers", "Provider")
        ChatModel = old.get_model("providers", "ChatModel")
        Classroom = old.get_model("accounts", "Classroom")
        provider = Provider.objects.create(slug="movetest", name_en="Move", name_zh="Move", base_url="/x")
        first, second = (ChatModel.objects.create(provider=provider, name=name) for name in ("one", "two"))
        listed = Classroom.objects.create(name="listed", default_model=second)
        listed.allowed_models.set([first, second])
        default_only = Classroom.objects.create(name="default only", default_model=first)
        untouched = Classroom.objects.create(name="untouched")

        new = migrate(AFTER)
        ClassModelAccess = new.get_model("providers", "ClassModelAccess")
        moved = {
            access.classroom_id: (set(access.allowed_models.values_list("pk", flat=True)), access.default_model_id)
            for access in ClassModelAccess.objects.all()
        }
        assert moved == {listed.pk: ({first.pk, second.pk}, second.pk), default_only.pk: (set(), first.pk)}
        assert untouched.pk not in moved  # no row: every model, as before

        old = migrate(BEFORE)
        Classroom = old.get_model("accounts", "Classroom")
        back = {
            classroom.pk: (set(classroom.allowed_models.values_list("pk", flat=True)), classroom.default_model_id)
            for classroom in Classroom.objects.all()
        }
        assert back == {
            listed.pk: ({first.pk, second.pk}, second.pk),
            default_only.pk: (set(), first.pk),
            untouched.pk: (set(), None),
        }
    finally:
        migrate(latest)
