"""The status a key page shows follows the key's last test: a key whose provider could not
be reached, answered with an error or rejected the key is not shown as usable."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers.models import ChatModel, Credential, Provider
from apps.providers.services import credential_create
from tests.conftest import People
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "sk-status-test-key-WXYZ"


def shown_badges(html: str) -> list[tuple[str, str]]:
    """(status class, label) of every key's badge on a page."""
    return re.findall(r'<span class="badge badge-([\w-]+)"[^>]*>([^<]+)</span>', html)


def class_key(people: People, model: ChatModel) -> Credential:
    return credential_create(
        actor=people.teacher, provider=model.provider, scope="class", classroom=people.classroom, api_key=KEY
    )


def test_a_key_whose_provider_is_unreachable_is_no_longer_shown_as_usable(
    people: People, client: Client, keyed_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    credential = class_key(people, keyed_model)
    client.force_login(people.teacher)
    assert shown_badges(client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="en").content.decode()) == [
        ("active", "Active")
    ]
    down = FakeUpstream().start()  # nothing listens at its address once stopped
    down.stop()
    Provider.objects.filter(pk=keyed_model.provider_id).update(base_url=down.base_url)
    client.post(reverse("key-test", args=[credential.pk]))
    expected = [("unreachable", "Provider not reachable at the last test")]
    assert shown_badges(client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="en").content.decode()) == expected
    class_page = client.get(
        reverse("class-models", args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert shown_badges(class_page) == expected

    # Reachable again: the next test that works shows it usable again.
    Provider.objects.filter(pk=keyed_model.provider_id).update(base_url=fake_upstream.base_url)
    client.post(reverse("key-test", args=[credential.pk]))
    assert shown_badges(client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="en").content.decode()) == [
        ("active", "Active")
    ]


@pytest.mark.parametrize(
    ("behaviour", "bearers", "shown"),
    [
        (Behaviour(status=500), None, ("error", "Provider error at the last test")),
        (Behaviour(), {"another-key"}, ("failing", "Rejected by the provider")),
        (Behaviour(status=429), None, ("active", "Active")),  # rate limited: the key was accepted
    ],
)
def test_the_badge_follows_the_last_test(
    people: People,
    client: Client,
    keyed_model: ChatModel,
    fake_upstream: FakeUpstream,
    behaviour: Behaviour,
    bearers: set[str] | None,
    shown: tuple[str, str],
) -> None:
    fake_upstream.default = behaviour
    fake_upstream.accepted_bearers = bearers
    credential = class_key(people, keyed_model)
    client.force_login(people.teacher)
    page = client.post(
        reverse("key-test", args=[credential.pk]), follow=True, HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert shown_badges(page) == [shown]
    assert KEY not in page
