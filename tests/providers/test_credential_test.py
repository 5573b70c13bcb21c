"""Test this key: one service (credential_test) for the keys page and the admin action, so
both ask the provider the same way and record the same result."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers.models import ChatModel, Credential
from apps.providers.services import credential_create, credential_test
from tests.conftest import People
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "sk-one-test-for-all-ABCD"


@pytest.fixture
def credential(people: People, keyed_model: ChatModel) -> Credential:
    return credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="class", classroom=people.classroom, api_key=KEY
    )


def test_a_rejected_key_is_marked_failing_and_works_again_after_a_good_test(
    credential: Credential, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.accepted_bearers = {"another-key"}
    assert credential_test(credential=credential) == Credential.CheckResult.REJECTED
    row = Credential.objects.get(pk=credential.pk)
    assert (row.status, row.last_check_result, row.last_error) == ("failing", "rejected", "rejected")
    fake_upstream.accepted_bearers = None
    assert credential_test(credential=credential) == Credential.CheckResult.WORKS
    assert Credential.objects.get(pk=credential.pk).status == "active"


def test_a_key_that_cannot_be_opened_is_not_asked_about_nor_recorded(
    credential: Credential, fake_upstream: FakeUpstream
) -> None:
    Credential.objects.filter(pk=credential.pk).update(sealed=b"not a sealed key")
    asked = len(fake_upstream.requests)
    assert credential_test(credential=Credential.objects.get(pk=credential.pk)) is None
    assert len(fake_upstream.requests) == asked
    assert Credential.objects.get(pk=credential.pk).last_check_result == ""


def test_the_admin_action_records_what_the_keys_page_records(
    people: People, client: Client, credential: Credential, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.accepted_bearers = {"another-key"}
    client.force_login(people.admin)
    page = client.post(
        reverse("admin:providers_credential_changelist"),
        {"action": "test_keys", "_selected_action": [credential.pk]},
        follow=True,
    ).content.decode()
    assert f"{credential.masked}: 被拒绝" in page and KEY not in page  # the result's label, in the admin's language
    row = Credential.objects.get(pk=credential.pk)
    assert (row.status, row.last_check_result) == ("failing", "rejected")
