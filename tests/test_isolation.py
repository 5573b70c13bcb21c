"""What a transactional test leaves for the next one (tests/conftest.py empties the tables
with DELETE and keeps the content types and permissions): nothing but those. The two tests
run in this order (pytest keeps a module's order)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from tests.conftest import People

pytestmark = pytest.mark.django_db(transaction=True)

KEPT = {ContentType, Permission}


def test_a_transactional_test_leaves_rows_behind_it(people: People) -> None:
    group = Group.objects.create(name="teachers' room")
    group.permissions.add(Permission.objects.first())
    people.admin.groups.add(group)
    assert people.classroom.pk and Group.objects.exists()


def test_the_next_one_finds_every_table_empty_but_the_content_types_and_permissions() -> None:
    left = {
        model._meta.label: model._base_manager.count()
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and model not in KEPT
    }
    assert {label: count for label, count in left.items() if count} == {}
    # Every model still has its content type, under the id the cache knows.
    for model in apps.get_models():
        cached = ContentType.objects.get_for_model(model)
        assert ContentType.objects.filter(pk=cached.pk, model=model._meta.model_name).exists()
    assert Permission.objects.filter(codename="view_user").exists()
