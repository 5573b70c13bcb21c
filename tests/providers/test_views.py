"""The providers page, the key pages and `manage.py providers`."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.providers.models import ChatModel, Credential, Provider
from apps.providers.services import credential_create
from tests.conftest import People
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db
KEY = "sk-visible-nowhere-QRST"


def deepseek_class_key(actor: User, classroom: Any, **more: Any) -> Credential:
    """A DeepSeek key added to a class by `actor`."""
    return credential_create(
        actor=actor,
        provider=Provider.objects.get(slug="deepseek"),
        scope="class",
        classroom=classroom,
        api_key=KEY,
        **more,
    )


def test_catalog_ships_every_provider_in_the_lessons(db: Any) -> None:
    slugs = set(Provider.objects.values_list("slug", flat=True))
    assert {"openai", "openrouter", "deepseek", "moonshot", "glm", "qwen", "ernie", "custom", "demo"} <= slugs
    assert Provider.objects.get(slug="moonshot").name_zh == "月之暗面-Kimi"
    assert Provider.objects.get(slug="glm").name_zh == "智谱-智谱清言"
    assert Provider.objects.get(slug="ernie").auth_style == "ernie"
    assert Provider.objects.get(slug="qwen").base_url.endswith("/compatible-mode/v1")
    for provider in Provider.objects.exclude(slug__in=["demo", "custom"]):
        assert provider.signup_url.startswith("https://"), provider.slug
        assert provider.models.exists(), provider.slug
        for model in provider.models.all():
            price = model.prices.get()
            assert price.currency in ("USD", "CNY") and price.effective_from
            assert model.context_window > 0 and model.max_output_tokens > 0


def test_providers_command_lists_in_both_languages_with_usability(people: People, monkeypatch: Any) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-env-deepseek")
    out = StringIO()
    call_command("providers", "--lang", "zh", stdout=out)
    text = out.getvalue()
    assert "月之暗面-Kimi" in text and "尚无密钥" in text
    deepseek = next(line for line in text.splitlines() if line.startswith("deepseek"))
    assert "可用" in deepseek and "sk-env-deepseek" not in text
    out = StringIO()
    call_command("providers", "--lang", "en", stdout=out)
    assert "Moonshot AI (Kimi)" in out.getvalue() and "no key yet" in out.getvalue()


def test_providers_page_shows_which_are_usable(people: People, client: Client) -> None:
    deepseek_class_key(people.teacher, people.classroom)
    client.force_login(people.student)
    page = client.get(reverse("providers"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-provider="deepseek" data-usable="yes"' in page
    assert 'data-provider="openai" data-usable="no"' in page
    assert 'data-provider="demo" data-usable="yes"' in page
    assert KEY not in page and "QRST" not in page  # students don't even see the last four


def test_teacher_adds_a_class_key_which_is_never_shown_again(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    provider = Provider.objects.get(slug="deepseek")
    response = client.post(
        reverse("keys"),
        {"provider": provider.pk, "scope": "class", "classroom": people.classroom.pk, "api_key": KEY, "label": "7A"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert KEY not in page and "…QRST" in page
    credential = Credential.objects.get()
    assert (credential.scope, credential.classroom_id) == ("class", people.classroom.pk)


def test_bad_key_form_is_400_and_saves_nothing(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    provider = Provider.objects.get(slug="deepseek")
    response = client.post(
        reverse("keys"),
        {
            "provider": provider.pk,
            "scope": "class",
            "classroom": people.classroom.pk,
            "api_key": "sk-good-key-1234",
            "base_url": "http://169.254.169.254/",
        },
    )
    assert response.status_code == 400
    assert "sk-good-key-1234" not in response.content.decode()
    assert Credential.objects.count() == 0
    assert (
        client.post(
            reverse("keys"),
            {"provider": provider.pk, "scope": "class", "classroom": people.other_classroom.pk, "api_key": KEY},
        ).status_code
        == 400
    )


def test_another_teachers_key_is_404(people: People, client: Client) -> None:
    credential = deepseek_class_key(people.other_teacher, people.other_classroom)
    client.force_login(people.teacher)
    for name in ("key-revoke", "key-test", "key-replace"):
        assert client.post(reverse(name, args=[credential.pk]), {"api_key": "sk-x"}).status_code == 404
    assert Credential.objects.get(pk=credential.pk).status == "active"


def test_co_teacher_manages_the_class_key(people: People, client: Client) -> None:
    credential = deepseek_class_key(people.teacher, people.classroom)
    client.force_login(people.co_teacher)
    assert client.post(reverse("key-revoke", args=[credential.pk])).status_code == 302
    assert Credential.objects.get(pk=credential.pk).status == "revoked"


@pytest.mark.parametrize("leaves", ["taken off the class", "made a student"])
def test_a_teacher_who_no_longer_teaches_the_class_loses_the_class_key_they_added(
    people: People, client: Client, leaves: str
) -> None:
    """A class key goes with the class: whoever added it cannot, once they no longer teach
    it, read it, revoke it, or point the class's chats at a server of their own."""
    credential = deepseek_class_key(people.co_teacher, people.classroom, label="Shared 7A key")
    if leaves == "taken off the class":
        people.classroom.teachers.remove(people.co_teacher)
    else:
        User.objects.filter(pk=people.co_teacher.pk).update(role=User.Role.STUDENT)
    client.force_login(people.co_teacher)
    assert "Shared 7A key" not in client.get(reverse("keys")).content.decode()
    for name in ("key-test", "key-replace", "key-revoke"):
        response = client.post(
            reverse(name, args=[credential.pk]), {"api_key": "sk-attacker-0000", "base_url": "https://1.1.1.2/v1"}
        )
        assert response.status_code == 404, name
    row = Credential.objects.get(pk=credential.pk)
    assert (row.status, row.base_url, row.last4) == ("active", "", KEY[-4:])
    client.force_login(people.teacher)  # the class's teacher still manages it
    assert "Shared 7A key" in client.get(reverse("keys")).content.decode()


def test_an_admin_manages_the_class_key_they_add_to_a_class_they_do_not_teach(people: People, client: Client) -> None:
    client.force_login(people.admin)
    response = client.post(
        reverse("keys"),
        {
            "provider": Provider.objects.get(slug="deepseek").pk,
            "scope": "class",
            "classroom": people.other_classroom.pk,
            "api_key": KEY,
            "label": "Key for 8B",
        },
    )
    assert response.status_code == 302
    assert "Key for 8B" in client.get(reverse("keys")).content.decode()
    credential = Credential.objects.get()
    assert client.post(reverse("key-revoke", args=[credential.pk])).status_code == 302
    assert Credential.objects.get().status == "revoked"


def test_students_cannot_manage_keys_unless_the_class_allows(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.get(reverse("keys")).status_code == 403
    people.classroom.allow_student_keys = True
    people.classroom.save()
    page = client.get(reverse("keys")).content.decode()
    assert 'value="class"' not in page and 'value="site"' not in page


def test_a_students_own_key_for_a_provider_the_class_does_not_offer_says_it_is_not_used(
    people: People, client: Client, demo_model: ChatModel, keyed_model: ChatModel
) -> None:
    """It was saved, tested as working, and then never appeared in the model menu."""
    from apps.providers.services import class_models_set

    people.classroom.allow_student_keys = True
    people.classroom.save()
    credential_create(actor=people.student, provider=keyed_model.provider, scope="user", api_key="sk-own-key-1234")
    client.force_login(people.student)
    assert "data-shut-out" not in client.get(reverse("keys")).content.decode()  # every model allowed
    class_models_set(classroom=people.classroom, allowed_models=[demo_model], default_model=demo_model)
    page = client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "data-shut-out" in page and "so this key is not used" in page
    class_models_set(classroom=people.classroom, allowed_models=[demo_model, keyed_model], default_model=demo_model)
    assert "data-shut-out" not in client.get(reverse("keys")).content.decode()


def test_key_pages_refuse_wrong_methods(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    assert client.get(reverse("key-revoke", args=[1])).status_code == 405
    assert client.put(reverse("keys")).status_code == 405


def test_replace_needs_a_new_key(people: People, client: Client) -> None:
    credential = deepseek_class_key(people.teacher, people.classroom)
    client.force_login(people.teacher)
    client.post(reverse("key-replace", args=[credential.pk]), {"api_key": ""})
    assert Credential.objects.get(pk=credential.pk).last4 == "QRST"
    client.post(reverse("key-replace", args=[credential.pk]), {"api_key": "sk-replacement-9876"})
    assert Credential.objects.get(pk=credential.pk).last4 == "9876"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("behaviour", "bearers", "result", "status"),
    [
        (Behaviour(), None, "works", "active"),
        (Behaviour(), {"another"}, "rejected", "failing"),
        (Behaviour(status=429), None, "rate_limited", "active"),
    ],
)
def test_test_this_key_reports_without_echoing_the_key(
    people: People,
    client: Client,
    keyed_model: ChatModel,
    fake_upstream: FakeUpstream,
    behaviour: Behaviour,
    bearers: Any,
    result: str,
    status: str,
) -> None:
    fake_upstream.default = behaviour
    fake_upstream.accepted_bearers = bearers
    credential = credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="class", classroom=people.classroom, api_key=KEY
    )
    client.force_login(people.teacher)
    page = client.post(reverse("key-test", args=[credential.pk]), follow=True).content.decode()
    assert KEY not in page
    row = Credential.objects.get(pk=credential.pk)
    assert (row.last_check_result, row.status) == (result, status)
    assert fake_upstream.requests[-1].path.endswith("/models")


@pytest.mark.django_db(transaction=True)
def test_test_this_key_reports_unreachable(
    people: People, client: Client, keyed_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    credential = credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="class", classroom=people.classroom, api_key=KEY
    )
    down = FakeUpstream().start()  # a provider that is down: nothing listens at its address
    down.stop()
    Provider.objects.filter(pk=keyed_model.provider_id).update(base_url=down.base_url)
    client.force_login(people.teacher)
    client.post(reverse("key-test", args=[credential.pk]))
    assert Credential.objects.get(pk=credential.pk).last_check_result == "unreachable"
