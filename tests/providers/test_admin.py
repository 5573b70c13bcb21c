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
