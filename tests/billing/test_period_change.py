"""A class's quota period changed mid-way (a month to days, and back): what was spent since
the new period began still counts, in the meter, the limit and the balance check; a reply
that ran across midnight still counts once, in the period it began in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.forms.models import model_to_dict
from django.urls import reverse

from apps.billing.models import Period, UsageCounter
from apps.billing.selectors import quota_status, site_billing_settings
from apps.billing.services import ledger_balance_check, quota_policy_set, site_billing_settings_save
from apps.providers.models import ChatModel
from tests.billing.conftest import settle, take
from tests.conftest import People
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db

MARCH_2 = datetime(2026, 3, 2, 4, tzinfo=UTC)
MARCH_10 = datetime(2026, 3, 10, 4, tzinfo=UTC)


def used(people: People) -> int:
    return quota_status(user=people.student, classroom=people.classroom).tokens_used


def test_what_was_spent_today_counts_when_the_period_becomes_a_day_and_all_of_it_when_it_is_a_month_again(
    people: People, fake_model: ChatModel
) -> None:
    with time_machine.travel(MARCH_2, tick=False):
        quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=100_000)
        settle(take(people.student, people.classroom, fake_model, prompt=300, max_tokens=500), 300, 200)  # 500
    with time_machine.travel(MARCH_10, tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=500), 100, 100)  # 200
        settle(take(people.classmate, people.classroom, fake_model, prompt=50, max_tokens=500), 50, 50)
        assert used(people) == 700

        quota_policy_set(classroom=people.classroom, period=Period.DAY, student_token_limit=1_000)
        assert used(people) == 200  # today's, not nothing: the meter shows it at once
        with pytest.raises(RequestRefused) as refused:
            take(people.student, people.classroom, fake_model, prompt=100, max_tokens=750)  # 200 + 850 > 1,000
        assert refused.value.code == "quota_exceeded"
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=600), 100, 100)
        assert used(people) == 400
        assert ledger_balance_check().difference_count == 0

        quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=100_000)
        assert used(people) == 900  # the month's 700 and the 200 counted under the day
        assert ledger_balance_check().difference_count == 0
        # Saving the same period again carries nothing twice.
        quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=90_000)
        assert used(people) == 900


def test_a_reply_across_midnight_counts_once_in_the_period_it_began_in(people: People, fake_model: ChatModel) -> None:
    quota_policy_set(classroom=people.classroom, period=Period.DAY, student_token_limit=10_000)
    with time_machine.travel(datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC), tick=False):
        running = take(people.student, people.classroom, fake_model, prompt=100, max_tokens=500)
    with time_machine.travel(MARCH_10, tick=False):
        settle(running, 100, 400)
        take(people.student, people.classroom, fake_model, prompt=10, max_tokens=10)  # the day's first request
        today = UsageCounter.objects.get(scope_key=f"c{people.classroom.pk}:s{people.student.pk}", tokens_held=20)
        assert (today.tokens_used, today.tokens_carried) == (0, 0)  # the reply is the 9th's


def test_the_sites_default_period_changed_in_admin_carries_what_was_spent_into_classes_without_a_policy_and_people_in_none(
    people: People, fake_model: ChatModel, admin_client: Any
) -> None:
    """A class without a quota of its own, and a teacher chatting in no class, run on the
    site's default period: changed from month to day in admin, the meters showed 0 used."""
    site = site_billing_settings()
    site.default_student_token_limit = 100_000
    site_billing_settings_save(site=site)
    with time_machine.travel(MARCH_2, tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=300, max_tokens=500), 300, 200)
    with time_machine.travel(MARCH_10, tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=500), 100, 100)
        settle(take(people.teacher, None, fake_model, prompt=40, max_tokens=500), 40, 60)
        assert (used(people), quota_status(user=people.teacher, classroom=None).tokens_used) == (700, 100)

        form = {
            field: value
            for field, value in model_to_dict(site_billing_settings()).items()
            if value is not None and field != "id"
        }
        response = admin_client.post(
            reverse("admin:billing_sitebillingsettings_change", args=[site.pk]), {**form, "default_period": "day"}
        )
        assert response.status_code == 302, response.content[:2000]

        assert site_billing_settings().default_period == Period.DAY
        assert used(people) == 200  # today's, at once
        assert quota_status(user=people.teacher, classroom=None).tokens_used == 100
        assert ledger_balance_check().difference_count == 0
        site = site_billing_settings()
        site.default_period = Period.MONTH
        site_billing_settings_save(site=site)
        assert used(people) == 700
        assert ledger_balance_check().difference_count == 0


def test_the_sites_default_period_cannot_be_a_term(people: People, admin_client: Any) -> None:
    """A site has no term dates: a default of term refused everyone on the site's defaults."""
    site = site_billing_settings()
    form = {field: value for field, value in model_to_dict(site).items() if value is not None and field != "id"}
    response = admin_client.post(
        reverse("admin:billing_sitebillingsettings_change", args=[site.pk]), {**form, "default_period": "term"}
    )
    assert response.status_code == 200 and "default_period" in response.context["adminform"].form.errors
    assert site_billing_settings().default_period == Period.MONTH
