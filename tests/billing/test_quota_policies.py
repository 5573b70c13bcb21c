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


@pytest.mark.parametrize(
    "fields",
    [
        {"class_cost_pool": "9999999999.9999999999"},  # stored by SQLite as 10^10: every read of the row failed
        {"student_cost_limit": "9999999999"},  # x 10^9 units: past a 64-bit counter, every turn failed
        {"student_token_limit": str(2**63)},
        {"class_token_pool": "1" + "0" * 30},
        {"rpm": str(2**63)},
        {"tpm": str(2**70)},
    ],
)
def test_a_limit_past_what_the_counters_hold_is_refused_and_the_class_keeps_working(
    people: People, client: Client, fields: dict[str, str]
) -> None:
    client.force_login(people.teacher)
    url = reverse("class-quota", args=[people.classroom.pk])
    response = client.post(url, policy_form(**fields), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and "less than or equal to" in response.content.decode()
    assert not QuotaPolicy.objects.exists()
    assert client.get(url).status_code == 200
    student = Client()
    student.force_login(people.student)
    assert student.get("/").status_code == 200


def test_the_largest_limits_allowed_are_kept_as_given_and_a_turn_is_held_against_them(
    people: People, client: Client
) -> None:
    client.force_login(people.teacher)
    response = client.post(
        reverse("class-quota", args=[people.classroom.pk]),
        policy_form(
            student_token_limit=str(10**12),
            student_cost_limit="100000000",
            class_token_pool=str(10**12),
            class_cost_pool="99999999.9999999999",
            rpm="100000",
            tpm=str(10**9),
        ),
    )
    assert response.status_code == 302
    policy = QuotaPolicy.objects.get()
    assert policy.student_cost_limit == Decimal("100000000") and policy.class_cost_pool <= Decimal("100000000")
    take(people.student, people.classroom, ChatModel.objects.get(name="demo-tutor"))


def test_the_services_refuse_limits_out_of_bounds_whoever_calls_them(people: People) -> None:
    with pytest.raises(ValidationError) as refused:
        quota_policy_set(classroom=people.classroom, period="month", class_cost_pool=Decimal("1e12"))
    assert "class_cost_pool" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        student_override_set(
            classroom=people.classroom, student=people.student, token_limit=2**63, cost_limit=Decimal("1e10")
        )
    assert set(refused.value.message_dict) == {"token_limit", "cost_limit"}
    assert not QuotaPolicy.objects.exists() and not StudentOverride.objects.exists()


def test_admin_refuses_limits_out_of_bounds_on_the_site_settings_and_a_class(people: People, admin: Client) -> None:
    response = admin.post(
        reverse("admin:billing_quotapolicy_add"),
        {"classroom": people.classroom.pk, **policy_form(class_cost_pool="9999999999.9999999999")},
    )
    assert response.status_code == 200 and not QuotaPolicy.objects.exists()
    assert "class_cost_pool" in response.context["adminform"].form.errors
