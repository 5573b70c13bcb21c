"""Which key a request uses: the user's own, then the class's, then the site's (stored,
then environment)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.models import ChatModel
from apps.providers.routes import NoRoute, routes_for_request
from apps.providers.services import credential_create, credential_revoke
from tests.conftest import People

pytestmark = pytest.mark.django_db


def route_key(people: People, model: ChatModel, user: Any = None) -> tuple[str, str]:
    route = routes_for_request(model=model, user=user or people.student, classroom=people.classroom)[0]
    return route.credential_scope, route.api_key


def test_user_then_class_then_site_then_environment(people: People, keyed_model: ChatModel, monkeypatch: Any) -> None:
    provider = keyed_model.provider
    with pytest.raises(NoRoute):
        route_key(people, keyed_model)
    monkeypatch.setenv("KEYEDAI_API_KEY", "sk-env")
    assert route_key(people, keyed_model) == ("site", "sk-env")
    site = credential_create(actor=people.admin, provider=provider, scope="site", api_key="sk-site")
    assert route_key(people, keyed_model) == ("site", "sk-site")
    class_key = credential_create(
        actor=people.teacher, provider=provider, scope="class", classroom=people.classroom, api_key="sk-class"
    )
    assert route_key(people, keyed_model) == ("class", "sk-class")
    people.classroom.allow_student_keys = True
    people.classroom.save()
    credential_create(actor=people.student, provider=provider, scope="user", api_key="sk-own")
    assert route_key(people, keyed_model) == ("user", "sk-own")
    # Another class's students never get this class's key.
    other = routes_for_request(model=keyed_model, user=people.other_student, classroom=people.other_classroom)[0]
    assert (other.credential_scope, other.api_key) == ("site", "sk-site")
    credential_revoke(credential=class_key)
    credential_revoke(credential=site)


def test_students_own_key_is_ignored_when_the_class_does_not_allow_it(people: People, keyed_model: ChatModel) -> None:
    people.classroom.allow_student_keys = True
    people.classroom.save()
    credential_create(actor=people.student, provider=keyed_model.provider, scope="user", api_key="sk-own")
    credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key="sk-class",
    )
    people.classroom.allow_student_keys = False
    people.classroom.save()
    assert route_key(people, keyed_model) == ("class", "sk-class")


def test_a_teachers_own_key_is_used_for_the_teacher(people: People, keyed_model: ChatModel) -> None:
    credential_create(actor=people.teacher, provider=keyed_model.provider, scope="user", api_key="sk-teacher")
    assert route_key(people, keyed_model, people.teacher) == ("user", "sk-teacher")
    with pytest.raises(NoRoute):
        route_key(people, keyed_model)  # never lent to the students


def test_revoked_key_is_never_used(people: People, keyed_model: ChatModel) -> None:
    key = credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key="sk-class",
    )
    credential_revoke(credential=key)
    with pytest.raises(NoRoute):
        route_key(people, keyed_model)


def test_key_for_a_provider_typed_url_is_held_to_public_addresses(
    people: People, keyed_model: ChatModel, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key="sk-class",
        base_url="http://203.0.113.9/v1",
    )
    route = routes_for_request(model=keyed_model, user=people.student, classroom=people.classroom)[0]
    assert route.user_supplied_url and route.base_url == "http://203.0.113.9/v1"
    assert "sk-class" not in repr(route)
