"""Keys in Django admin: entered write-only, shown masked, broken ones flagged."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers.models import Credential, Provider
from tests.conftest import People

pytestmark = pytest.mark.django_db
KEY = "sk-admin-entered-key-LMNO"


@pytest.fixture
def admin_client_(people: People, client: Client) -> Client:
    client.force_login(people.admin)
    return client


def test_admin_adds_a_site_key_through_the_service(admin_client_: Client) -> None:
    provider = Provider.objects.get(slug="openai")
    response = admin_client_.post(
        reverse("admin:providers_credential_add"),
        {"provider": provider.pk, "scope": "site", "label": "school", "base_url": "", "api_key": KEY},
        follow=True,
    )
    assert response.status_code == 200
    credential = Credential.objects.get()
    assert (credential.scope, credential.last4, credential.owner_id) == ("site", "LMNO", None)
    assert KEY not in response.content.decode()
    change = admin_client_.get(reverse("admin:providers_credential_change", args=[credential.pk])).content.decode()
    assert KEY not in change and "…LMNO" in change


def test_admin_form_refuses_a_class_key_for_an_internal_url(admin_client_: Client, people: People) -> None:
    provider = Provider.objects.get(slug="openai")
    response = admin_client_.post(
        reverse("admin:providers_credential_add"),
        {
            "provider": provider.pk,
            "scope": "class",
            "classroom": people.classroom.pk,
            "base_url": "http://10.1.2.3/v1",
            "api_key": KEY,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200  # the form again, with the error
    assert "private" in response.content.decode()
    assert Credential.objects.count() == 0


def test_admin_sees_keys_that_no_longer_open(admin_client_: Client, settings: Any) -> None:
    provider = Provider.objects.get(slug="openai")
    admin_client_.post(
        reverse("admin:providers_credential_add"), {"provider": provider.pk, "scope": "site", "api_key": KEY}
    )
    settings.KEY_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(os.urandom(32)).decode()]
    page = admin_client_.get(reverse("admin:providers_credential_changelist")).content.decode()
    assert 'alt="False"' in page  # the "opens with the master keys" column
    assert KEY not in page


def test_conversation_admin_lists_conversations(admin_client_: Client) -> None:
    assert admin_client_.get(reverse("admin:conversations_conversation_changelist")).status_code == 200


def test_admin_refuses_a_class_key_without_a_class_and_a_revoked_keys_replacement_on_the_form(
    admin_client_: Client,
) -> None:
    """The service refused both, but admin's save step said "added/changed successfully" of a
    key it had not saved, and logged it."""
    from django.contrib.admin.models import LogEntry

    provider = Provider.objects.get(slug="openai")
    add = reverse("admin:providers_credential_add")
    response = admin_client_.post(
        add, {"provider": provider.pk, "scope": "class", "api_key": KEY}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200 and "Choose the class this key is for." in response.content.decode()
    assert not Credential.objects.exists() and not LogEntry.objects.exists()

    admin_client_.post(add, {"provider": provider.pk, "scope": "site", "api_key": KEY})
    credential = Credential.objects.get()
    admin_client_.post(
        reverse("admin:providers_credential_changelist"),
        {"action": "revoke_keys", "_selected_action": [credential.pk]},
    )
    change = reverse("admin:providers_credential_change", args=[credential.pk])
    response = admin_client_.post(
        change, {"label": "", "base_url": "", "api_key": "sk-another-key-WXYZ"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200 and "A revoked key cannot be replaced" in response.content.decode()
    credential.refresh_from_db()
    assert credential.last4 == "LMNO"


@pytest.mark.parametrize(
    "fields",
    [
        {"input_per_million": "-500000", "output_per_million": "1"},
        {"input_per_million": "1", "output_per_million": "99999999"},
        {"effective_from_0": "0001-01-01"},
    ],
)
def test_admin_refuses_a_negative_or_absurd_price_and_a_year_one_start(
    admin_client_: Client, fields: dict[str, str]
) -> None:
    from apps.providers.models import ChatModel, ModelPrice

    model = ChatModel.objects.get(name="demo-tutor")
    before = list(ModelPrice.objects.values_list("input_per_million", "output_per_million", "effective_from"))
    form = {
        "model": model.pk,
        "input_per_million": "1",
        "output_per_million": "2",
        "currency": "CNY",
        "effective_from_0": "2026-01-01",
        "effective_from_1": "00:00:00",
        **fields,
    }
    response = admin_client_.post(reverse("admin:providers_modelprice_add"), form)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert list(ModelPrice.objects.values_list("input_per_million", "output_per_million", "effective_from")) == before


def test_the_sealed_key_and_an_api_keys_hash_cannot_be_filtered_on(admin_client_: Client, people: People) -> None:
    from apps.gateway.services import api_key_create

    api_key_create(user=people.student, name="laptop")
    response = admin_client_.get(reverse("admin:gateway_apikey_changelist") + "?key_hash__startswith=a")
    assert response.status_code in (302, 400)  # Django's refusal of a lookup it does not allow
    response = admin_client_.get(reverse("admin:providers_credential_changelist") + "?sealed__startswith=a")
    assert response.status_code in (302, 400)


def test_a_class_with_students_is_archived_not_deleted_in_admin(admin_client_: Client, people: People) -> None:
    from apps.accounts.models import Classroom

    url = reverse("admin:accounts_classroom_delete", args=[people.classroom.pk])
    page = admin_client_.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "has students: archive it instead" in page
    admin_client_.post(url, {"post": "yes"})
    assert Classroom.objects.filter(pk=people.classroom.pk).exists()


@pytest.mark.parametrize("rate", ["9999999999.99999999", "0", "-1"])
def test_admin_refuses_an_exchange_rate_the_column_cannot_keep(admin_client_: Client, rate: str) -> None:
    from apps.billing.models import ExchangeRate

    before = ExchangeRate.objects.count()
    response = admin_client_.post(
        reverse("admin:billing_exchangerate_add"),
        {
            "from_currency": "USD",
            "to_currency": "CNY",
            "rate": rate,
            "effective_from_0": "2026-01-01",
            "effective_from_1": "00:00:00",
        },
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert ExchangeRate.objects.count() == before
    assert admin_client_.get(reverse("admin:billing_exchangerate_changelist")).status_code == 200
