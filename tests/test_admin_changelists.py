"""Every admin change list with a date hierarchy answers dates at the calendar's edges as a
bad filter (the list again, with ?e=1), never a server error: Django's own range for the
last year, month or day runs past the last date a datetime holds."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.conftest import People

pytestmark = pytest.mark.django_db

DATED = sorted(
    (
        (model, model_admin.date_hierarchy)
        for model, model_admin in admin.site._registry.items()
        if model_admin.date_hierarchy
    ),
    key=lambda pair: pair[0]._meta.label,
)

EDGES = [
    {"year": "9999"},
    {"year": "9999", "month": "12"},
    {"year": "9999", "month": "12", "day": "31"},
    {"year": "0"},
    {"year": "2026", "month": "13"},
    {"year": "2026", "month": "2", "day": "30"},
    {"year": "9" * 30},
    {"year": "-1"},
]


def test_the_date_hierarchies_are_those_this_test_knows() -> None:
    assert [model._meta.label for model, _ in DATED] == [
        "accounts.AuditEvent",
        "axes.AccessAttempt",
        "axes.AccessFailureLog",
        "axes.AccessLog",
        "billing.LedgerEntry",
        "billing.UsageRollup",
        "providers.ModelPrice",
    ]


@pytest.mark.parametrize(("model", "field"), DATED, ids=lambda value: getattr(value, "__name__", value))
def test_a_date_at_the_calendars_edge_is_a_bad_filter_not_a_server_error(
    model: type, field: str, people: People, client: Client
) -> None:
    client.force_login(people.admin)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200
    for edge in EDGES:
        response = client.get(f"{url}?{urlencode({f'{field}__{part}': value for part, value in edge.items()})}")
        assert response.status_code == 302, edge
        assert response["Location"].endswith("?e=1"), edge
    # a date inside the calendar still filters
    assert client.get(f"{url}?{urlencode({f'{field}__year': '2026', f'{field}__month': '12'})}").status_code == 200
