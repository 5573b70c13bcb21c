"""No page fails on a query string someone typed, and no GET changes what is stored.

Every page a student, a teacher and someone logged out can reach (the crawl of
tests/test_navigation.py, Django admin aside) is opened again with hostile values in the
query parameters the pages read: a NUL (PostgreSQL cannot store or compare one), dates at
the calendar's edges, ids past a bigint, negative and absurd page numbers. Each answer
must be below 500; and after all of them the rows a person can change are as they were
(sessions aside: a form's one-time token is kept in one).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client

from apps.accounts.models import Classroom, Enrollment, User
from apps.billing.models import Hold, LedgerEntry, QuotaPolicy, UsageCounter
from apps.conversations.models import Conversation, Message
from apps.gateway.models import ApiKey
from tests.conftest import People
from tests.test_navigation import ADMIN_PREFIX, crawl, logged_in, nav_links, school  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

HOSTILE = [
    {"q": "\x00", "at": "\x00", "deleted": "\x00", "start": "\x00", "end": "\x00", "page": "\x00", "period": "\x00"},
    {"start": "9999-12-31", "end": "9999-12-31"},
    {"start": "0001-01-01", "end": "0001-01-05"},
    {"end": "0001-01-01"},
    {"at": "9" * 30, "deleted": "9" * 30, "page": "9" * 30, "student": "9" * 30},
    {"at": "-1", "page": "-1", "deleted": "-5", "student": "-1"},
    {"at": "²", "page": "²", "deleted": "²", "student": "²"},  # str.isdigit() says yes, int() says no
    {"q": "%" * 200 + "_" * 200, "page": "0"},
    {"q": "x" * 10_000},
    {"start": "2026-13-45", "end": "2026-02-30", "period": "forever"},
]


def stored(people: People) -> dict[str, Any]:
    """What a GET must not change."""
    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "display_name", "role", "is_active")),
        "classrooms": list(Classroom.objects.order_by("pk").values()),
        "enrollments": list(Enrollment.objects.order_by("pk").values()),
        "conversations": list(Conversation.objects.order_by("pk").values()),
        "messages": Message.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "holds": list(Hold.objects.order_by("pk").values_list("pk", "status")),
        "counters": list(UsageCounter.objects.order_by("pk").values()),
        "policies": list(QuotaPolicy.objects.order_by("pk").values()),
        "api_keys": list(ApiKey.objects.order_by("pk").values()),
    }


def hostile_gets(client: Client, pages: set[str]) -> None:
    for page in sorted(pages):
        if page.startswith(ADMIN_PREFIX) or page.startswith("/accounts/logout"):
            continue
        path = urlsplit(page).path
        for query in HOSTILE:
            response = client.get(f"{path}?{urlencode(query)}", HTTP_ACCEPT_LANGUAGE="en")
            assert response.status_code < 500, f"{path}?{urlencode(query)} answered {response.status_code}"


@pytest.mark.parametrize("who", ["student", "teacher", "nobody"])
def test_no_page_fails_on_a_hostile_query_and_no_get_changes_anything(school: People, who: str) -> None:  # noqa: F811
    if who == "nobody":
        client = Client(raise_request_exception=False)
        pages = crawl(client, nav_links(client))
    else:
        user = getattr(school, who)
        client = logged_in(user)
        pages = crawl(client, nav_links(client))
        client = Client(raise_request_exception=False)
        client.force_login(user)
    before = stored(school)
    hostile_gets(client, pages)
    assert stored(school) == before
