"""Views that receive a secret: a key (or a password) never appears in an error report, the
DEBUG page included, and a base URL no parser can read is a form error, not a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import join_code_regenerate
from apps.providers.models import Credential, Provider
from apps.providers.services import credential_create
from tests.conftest import People
from tests.providers.test_netguard import MALFORMED

pytestmark = pytest.mark.django_db
KEY = "sk-never-on-any-page-WXYZ"
NEW_KEY = "sk-the-replacement-never-shown-5678"
PASSWORD = "a-students-own-password-917"
FRAME_SECRET = "frame-local-password-8812"
STARS = "********************"  # what Django's reporter filter puts in place of a secret


@pytest.fixture
def debug_client(settings: Any) -> Client:
    """`make run`: DEBUG on, so an unhandled exception renders Django's technical 500 page
    (with the request's POST data and every frame's local variables)."""
    settings.DEBUG = True
    return Client(raise_request_exception=False)


def _broken_seal(plaintext: bytes, *, binding: bytes) -> tuple[bytes, str]:
    raise RuntimeError("the sealing step broke")


@pytest.fixture
def sealing_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected failure at the deepest point a key reaches: sealing it."""
    monkeypatch.setattr("apps.providers.services.seal", _broken_seal)


def assert_debug_page_without(response: Any, *secrets: str, error: str = "the sealing step broke") -> None:
    page = response.content.decode()
    assert response.status_code == 500
    assert "RuntimeError" in page and error in page  # it is the debug page, with the failure on it
    assert STARS in page  # the secret's place is shown, starred
    for secret in secrets:
        assert secret not in page
        assert secret[-12:] not in page


def class_key_posted(client: Client, people: People) -> Any:
    """The teacher adds KEY for the class on the keys page."""
    client.force_login(people.teacher)
    return client.post(
        reverse("keys"),
        {
            "provider": Provider.objects.get(slug="deepseek").pk,
            "scope": "class",
            "classroom": people.classroom.pk,
            "api_key": KEY,
            "label": "7A",
        },
    )


def test_a_key_posted_to_the_keys_page_is_not_on_the_debug_page(
    people: People, debug_client: Client, sealing_breaks: None
) -> None:
    response = class_key_posted(debug_client, people)
    assert_debug_page_without(response, KEY)
    assert Credential.objects.count() == 0


def test_a_replacement_key_is_not_on_the_debug_page(
    people: People, debug_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = credential_create(
        actor=people.teacher,
        provider=Provider.objects.get(slug="deepseek"),
        scope="class",
        classroom=people.classroom,
        api_key=KEY,
    )
    monkeypatch.setattr("apps.providers.services.seal", _broken_seal)  # after the key was saved
    debug_client.force_login(people.teacher)
    response = debug_client.post(reverse("key-replace", args=[credential.pk]), {"api_key": NEW_KEY})
    assert_debug_page_without(response, NEW_KEY, KEY)
    assert Credential.objects.get(pk=credential.pk).last4 == "WXYZ"


@pytest.mark.parametrize("scope", ["site", "class"])
def test_a_key_entered_in_admin_is_not_on_the_debug_page(
    people: People, debug_client: Client, sealing_breaks: None, scope: str
) -> None:
    debug_client.force_login(people.admin)
    response = debug_client.post(
        reverse("admin:providers_credential_add"),
        {
            "provider": Provider.objects.get(slug="openai").pk,
            "scope": scope,
            "classroom": people.classroom.pk,
            "label": "school",
            "base_url": "",
            "api_key": KEY,
        },
    )
    assert_debug_page_without(response, KEY)
    assert Credential.objects.count() == 0


def test_a_password_posted_to_register_is_not_on_the_debug_page(
    people: People, debug_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = join_code_regenerate(classroom=people.classroom)

    def broken(raw_password: str | None, *args: Any) -> str:
        raise RuntimeError("set_password broke")  # the deepest point the password reaches: its hashing

    monkeypatch.setattr("apps.accounts.services.make_password", broken)
    response = debug_client.post(
        reverse("register"),
        {
            "join_code": code,
            "username": "newcomer",
            "display_name": "New",
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert_debug_page_without(response, PASSWORD, error="set_password broke")
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_base_url_on_the_keys_page_is_a_form_error_that_writes_nothing(
    people: People, debug_client: Client, url: str
) -> None:
    debug_client.force_login(people.teacher)
    response = debug_client.post(
        reverse("keys"),
        {
            "provider": Provider.objects.get(slug="deepseek").pk,
            "scope": "class",
            "classroom": people.classroom.pk,
            "api_key": KEY,
            "base_url": url,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "errorlist" in page and KEY not in page
    assert Credential.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[127.0.0.1]/v1",
        "http://8.8.8.8:99999/v1",
        "http://[64:ff9b:1::7f00:1]/v1",
        "https://8.8.8.8:22/v1",
    ],
)
def test_a_bad_base_url_when_replacing_is_a_400_that_changes_nothing(
    people: People, debug_client: Client, url: str
) -> None:
    credential = credential_create(
        actor=people.teacher,
        provider=Provider.objects.get(slug="deepseek"),
        scope="class",
        classroom=people.classroom,
        api_key=KEY,
    )
    debug_client.force_login(people.teacher)
    response = debug_client.post(
        reverse("key-replace", args=[credential.pk]), {"api_key": NEW_KEY, "base_url": url}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert NEW_KEY not in response.content.decode()
    after = Credential.objects.get(pk=credential.pk)
    assert (after.last4, after.base_url, after.sealed) == ("WXYZ", "", credential.sealed)


@pytest.mark.parametrize("scope", ["site", "class"])
@pytest.mark.parametrize("url", ["http://[::1", "http://[127.0.0.1]/v1", "http://[::1]x/v1", "http://8.8.8.8:-1/v1"])
def test_a_malformed_base_url_in_admin_is_a_form_error_for_every_scope(
    people: People, debug_client: Client, scope: str, url: str
) -> None:
    # Admins may point a site key anywhere, but not at something no client can parse.
    debug_client.force_login(people.admin)
    response = debug_client.post(
        reverse("admin:providers_credential_add"),
        {
            "provider": Provider.objects.get(slug="openai").pk,
            "scope": scope,
            "classroom": people.classroom.pk,
            "label": "school",
            "base_url": url,
            "api_key": KEY,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "errorlist" in page and KEY not in page
    assert Credential.objects.count() == 0


def test_a_password_inside_a_settings_url_is_not_on_the_debug_page(
    people: People, debug_client: Client, sealing_breaks: None, settings: Any
) -> None:
    """REDIS_URL, the broker's and the cache's URLs, the channel layer's hosts: their names
    look harmless to Django's filter, so the password in them was shown in full to anyone
    who could make a page fail (/demo/v1 needs no account)."""
    secret = "redis-password-on-no-page-4711"
    url = f"redis://:{secret}@127.0.0.1:6379/0"
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = f"redis://worker:{secret}@127.0.0.1:6379/1"
    settings.CHANNEL_LAYERS = {"default": {"CONFIG": {"hosts": [f"redis://:p@ss-{secret}@127.0.0.1:6379/2"]}}}
    settings.CACHES = {**settings.CACHES, "extra": {"BACKEND": "x", "LOCATION": [url]}}
    response = class_key_posted(debug_client, people)
    assert_debug_page_without(response, KEY, secret)
    assert "redis://:********************@127.0.0.1:6379/0" in response.content.decode()


def test_a_url_with_a_password_in_a_failing_frames_locals_is_starred(
    people: People, debug_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis client failing shows its own frames' locals (outside any view marked
    sensitive): the URL it was given, password and all."""

    def connecting(*args: Any, **kwargs: Any) -> None:
        url = f"redis://:{FRAME_SECRET}@10.0.0.9:6379/0"  # a global: only the URL is a local
        hosts = [url]
        options = {"address": url}
        raise RuntimeError(f"the quota meter broke near {len(url) + len(hosts) + len(options)}")

    monkeypatch.setattr("apps.conversations.views.quota_status", connecting)
    debug_client.force_login(people.student)
    response = debug_client.get(reverse("home"))
    page = response.content.decode()
    assert response.status_code == 500 and "the quota meter broke near" in page
    assert FRAME_SECRET not in page and "redis://:********************@10.0.0.9" in page
