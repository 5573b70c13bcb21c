"""Class quotas and student overrides: the site's caps are checked in one place, for the
teachers' pages and for Django admin alike, and every change reaches the cached limits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from apps.billing.models import QuotaPolicy, SiteBillingSettings, StudentOverride
from apps.billing.selectors import limits_for, site_billing_settings_forget
from apps.billing.services import quota_policy_set, student_override_set
from apps.providers.models import ChatModel
from tests.billing.conftest import take
from tests.conftest import People
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db


@pytest.fixture
def capped() -> None:
    SiteBillingSettings.objects.update_or_create(
        pk=1,
        defaults={
            "max_student_token_limit": 10_000,
            "max_student_cost_limit": Decimal("2"),
            "max_rpm": 20,
            "max_tpm": None,
        },
    )
    site_billing_settings_forget()


@pytest.fixture
def admin(people: People, client: Client) -> Client:
    client.force_login(people.admin)
    return client


def policy_form(**fields: object) -> dict[str, object]:
    return {
        "period": "month",
        "term_start": "",
        "term_end": "",
        "student_token_limit": "",
        "student_cost_limit": "",
        "class_token_pool": "",
        "class_cost_pool": "",
        "rpm": "",
        "tpm": "",
        **fields,
    }


def test_a_class_quota_past_the_site_caps_is_refused_field_by_field(people: People, capped: None) -> None:
    with pytest.raises(ValidationError) as refused:
        quota_policy_set(
            classroom=people.classroom,
            period="month",
            student_token_limit=50_000,
            student_cost_limit=None,
            rpm=5,
            tpm=None,
        )
    # Over the cap, and "no limit" where the site has a cap; tpm has none.
    assert set(refused.value.message_dict) == {"student_token_limit", "student_cost_limit"}
    assert not QuotaPolicy.objects.exists()


def test_an_override_past_the_site_caps_is_refused_but_an_empty_field_keeps_the_class_limit(
    people: People, capped: None
) -> None:
    with pytest.raises(ValidationError) as refused:
        student_override_set(
            classroom=people.classroom, student=people.student, token_limit=20_000, cost_limit=Decimal("3")
        )
    assert set(refused.value.message_dict) == {"token_limit", "cost_limit"}
    override = student_override_set(
        classroom=people.classroom, student=people.student, token_limit=9_000, cost_limit=None
    )
    assert override is not None and (override.token_limit, override.cost_limit) == (9_000, None)


def test_an_override_is_only_for_a_student_of_the_class(people: People) -> None:
    with pytest.raises(ValidationError):
        student_override_set(classroom=people.classroom, student=people.other_student, token_limit=1, cost_limit=None)
    assert not StudentOverride.objects.exists()


def test_an_admin_cannot_save_a_policy_above_the_site_cap(people: People, admin: Client, capped: None) -> None:
    response = admin.post(
        reverse("admin:billing_quotapolicy_add"),
        policy_form(classroom=people.classroom.pk, student_token_limit="50000", student_cost_limit="1"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200  # the form again, with the reason
    assert "The site allows at most 10000 here." in response.content.decode()
    assert not QuotaPolicy.objects.exists()


def test_an_admin_change_applies_at_once(people: People, admin: Client, fake_model: ChatModel) -> None:
    quota_policy_set(classroom=people.classroom, period="month", student_token_limit=10_000)
    take(people.student, people.classroom, fake_model)  # the student's limits are now cached
    policy = QuotaPolicy.objects.get()
    response = admin.post(
        reverse("admin:billing_quotapolicy_change", args=[policy.pk]), policy_form(student_token_limit="300")
    )
    assert response.status_code == 302
    assert QuotaPolicy.objects.get().student_token_limit == 300
    with pytest.raises(RequestRefused):  # 200 held + 200 more passes 300, whatever was cached
        take(people.student, people.classroom, fake_model)


def test_an_admin_adds_and_deletes_a_policy_through_the_service(people: People, admin: Client) -> None:
    site_default = limits_for(user=people.student, classroom=people.classroom).student_tokens
    assert (
        admin.post(
            reverse("admin:billing_quotapolicy_add"),
            policy_form(classroom=people.classroom.pk, student_token_limit="1234"),
        ).status_code
        == 302
    )
    assert limits_for(user=people.student, classroom=people.classroom).student_tokens == 1_234
    policy = QuotaPolicy.objects.get()
    assert admin.post(reverse("admin:billing_quotapolicy_delete", args=[policy.pk]), {"post": "yes"}).status_code == 302
    assert not QuotaPolicy.objects.exists()
    assert limits_for(user=people.student, classroom=people.classroom).student_tokens == site_default


def test_a_term_at_the_calendars_edge_is_refused_on_the_class_quota_page(people: People, client: Client) -> None:
    """A reset computed a day past 9999-12-31 overflowed (a 500): terms are held to 2000-2099."""
    client.force_login(people.teacher)
    response = client.post(
        reverse("class-quota", args=[people.classroom.pk]),
        policy_form(period="term", term_start="9999-12-01", term_end="9999-12-31"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400 and "less than or equal to 2099-12-31" in response.content.decode()
    assert not QuotaPolicy.objects.exists()
