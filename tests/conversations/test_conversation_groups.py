"""The sidebar's conversation list, grouped by date in the user's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from apps.conversations.models import Conversation
from apps.conversations.selectors import conversation_groups, conversation_list_for_user
from apps.conversations.services import turn_begin
from tests.conftest import People

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def _conversation(people: People, model: Any, title: str, updated: datetime) -> Conversation:
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=model,
        content=title,
        request_id=f"r-{title}",
    )
    Conversation.objects.filter(pk=rows.conversation.pk).update(updated_at=updated)
    return rows.conversation


def test_conversations_are_grouped_today_yesterday_week_month_then_by_month(people: People, demo_model: Any) -> None:
    for title, updated in [
        ("just now", NOW - timedelta(minutes=5)),
        ("this morning early", datetime(2026, 11, 23, 0, 30, tzinfo=SHANGHAI)),  # 16:30 UTC the day before
        ("last night", datetime(2026, 11, 22, 23, 0, tzinfo=SHANGHAI)),
        ("three days", NOW - timedelta(days=3)),
        ("two weeks", NOW - timedelta(days=14)),
        ("in september", datetime(2026, 9, 10, 12, 0, tzinfo=SHANGHAI)),
        ("last year", datetime(2025, 12, 31, 12, 0, tzinfo=SHANGHAI)),
    ]:
        _conversation(people, demo_model, title, updated)

    with timezone.override(SHANGHAI), translation.override("en"):
        groups = conversation_groups(conversations=conversation_list_for_user(user=people.student), now=NOW)

    assert [(group.key, group.label, [str(c) for c in group.conversations]) for group in groups] == [
        ("today", "Today", ["just now", "this morning early"]),
        ("yesterday", "Yesterday", ["last night"]),
        ("week", "Previous 7 days", ["three days"]),
        ("month", "Previous 30 days", ["two weeks"]),
        ("2026-09", "September 2026", ["in september"]),
        ("2025-12", "December 2025", ["last year"]),
    ]


def test_the_chat_page_shows_the_groups(people: People, demo_model: Any, client: Client) -> None:
    _conversation(people, demo_model, "What is a token?", timezone.now())
    _conversation(people, demo_model, "Old question", timezone.now() - timedelta(days=2))
    client.force_login(people.student)

    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'data-group="today"' in page and 'data-group="week"' in page
    assert page.index("What is a token?") < page.index("Previous 7 days") < page.index("Old question")
