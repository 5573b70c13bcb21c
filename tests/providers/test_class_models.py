"""Which models a class allows: the teachers' page, admin, and the one rule the chat page and
the pipeline share."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers.models import ChatModel, ClassModelAccess
from apps.providers.selectors import (
    chat_models_enabled,
    chat_models_offered_to,
    classroom_allowed_model_ids,
    classroom_allows_model,
    classroom_default_model,
)
from apps.providers.services import class_models_set
from tests.conftest import People

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(people: People, client: Client) -> Client:
    client.force_login(people.teacher)
    return client


def offered(client: Client) -> tuple[list[str], str]:
    """The chat page's model menu: every option's value, and the selected one."""
    page = client.get(reverse("home")).content.decode()
    menu = page[page.index('<select id="model"') :]
    options = re.findall(r'<option value="([^"]*)"( selected)?[ >]', menu[: menu.index("</select>")])
    return [value for value, _ in options], next((value for value, chosen in options if chosen), "")


def test_teacher_sets_allowed_and_default_models_and_the_student_is_offered_only_those(
    people: People, teacher: Client, client: Client, demo_model: ChatModel, fake_model: ChatModel
) -> None:
    url = reverse("class-models", args=[people.classroom.pk])
    assert teacher.get(url).status_code == 200
    response = teacher.post(url, {"allowed_models": [demo_model.pk, fake_model.pk], "default_model": fake_model.pk})
    assert response.status_code == 302 and response["Location"] == url
    assert classroom_allowed_model_ids(classroom=people.classroom) == {demo_model.pk, fake_model.pk}
    assert classroom_default_model(classroom=people.classroom) == fake_model
    page = teacher.get(url).content.decode()  # the form shows what is saved
    assert re.search(rf'name="allowed_models" value="{fake_model.pk}"[^>]*checked', page)
    assert re.search(rf'<option value="{fake_model.pk}" selected>', page)

    student = Client()
    student.force_login(people.student)
    assert offered(student) == (["demo/demo-tutor", "fakeai/fake-model"], "fakeai/fake-model")

    teacher.post(url, {"allowed_models": [demo_model.pk], "default_model": ""})
    assert offered(student) == (["demo/demo-tutor"], "demo/demo-tutor")
    # Another class is not bound by this class's list.
    other = Client()
    other.force_login(people.other_student)
    assert set(offered(other)[0]) >= {"demo/demo-tutor", "fakeai/fake-model"}


def test_no_models_ticked_allows_every_enabled_model(
    people: People, teacher: Client, demo_model: ChatModel, fake_model: ChatModel
) -> None:
    class_models_set(classroom=people.classroom, allowed_models=[demo_model], default_model=None)
    teacher.post(reverse("class-models", args=[people.classroom.pk]), {"default_model": ""})
    assert classroom_allowed_model_ids(classroom=people.classroom) is None
    assert all(classroom_allows_model(classroom=people.classroom, model=model) for model in chat_models_enabled())


def test_the_default_model_must_be_one_the_class_allows(
    people: People, teacher: Client, demo_model: ChatModel, fake_model: ChatModel
) -> None:
    response = teacher.post(
        reverse("class-models", args=[people.classroom.pk]),
        {"allowed_models": [demo_model.pk], "default_model": fake_model.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "The default model must be one of the allowed models." in response.content.decode()
    assert not ClassModelAccess.objects.exists()


def test_an_unknown_model_is_400(people: People, teacher: Client) -> None:
    response = teacher.post(reverse("class-models", args=[people.classroom.pk]), {"allowed_models": ["999999"]})
    assert response.status_code == 400
    assert not ClassModelAccess.objects.exists()


def test_another_teachers_class_is_404_and_students_get_404(
    people: People, teacher: Client, client: Client, demo_model: ChatModel
) -> None:
    url = reverse("class-models", args=[people.other_classroom.pk])
    assert teacher.get(url).status_code == 404
    assert teacher.post(url, {"allowed_models": [demo_model.pk]}).status_code == 404
    assert not ClassModelAccess.objects.exists()
    client.force_login(people.student)
    assert client.get(reverse("class-models", args=[people.classroom.pk])).status_code == 404


def test_the_page_takes_only_get_and_post(people: People, teacher: Client) -> None:
    assert teacher.put(reverse("class-models", args=[people.classroom.pk])).status_code == 405


def test_the_chat_page_and_the_pipeline_share_one_rule(
    people: People, demo_model: ChatModel, fake_model: ChatModel
) -> None:
    """Every model the chat page offers passes the pipeline's check, and none it leaves out
    for the class does."""
    class_models_set(classroom=people.classroom, allowed_models=[fake_model], default_model=fake_model)
    offered_models = chat_models_offered_to(user=people.student, classroom=people.classroom)
    assert offered_models == [fake_model]
    for model in chat_models_enabled():
        assert classroom_allows_model(classroom=people.classroom, model=model) == (model == fake_model)
    assert classroom_allows_model(classroom=None, model=demo_model)


def test_the_allowlist_is_one_query(people: People, demo_model: ChatModel, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        assert classroom_allowed_model_ids(classroom=people.classroom) is None  # no row
    class_models_set(classroom=people.classroom, allowed_models=[], default_model=demo_model)
    with django_assert_num_queries(1):
        assert classroom_allowed_model_ids(classroom=people.classroom) is None  # a row, no list
    class_models_set(classroom=people.classroom, allowed_models=[demo_model], default_model=demo_model)
    with django_assert_num_queries(1):
        assert classroom_allowed_model_ids(classroom=people.classroom) == {demo_model.pk}


def test_admin_refuses_a_default_the_class_does_not_allow(
    people: People, client: Client, demo_model: ChatModel, fake_model: ChatModel
) -> None:
    client.force_login(people.admin)
    url = reverse("admin:providers_classmodelaccess_add")
    refused = client.post(
        url,
        {"classroom": people.classroom.pk, "allowed_models": [demo_model.pk], "default_model": fake_model.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert refused.status_code == 200 and not ClassModelAccess.objects.exists()
    assert "The default model must be one of the allowed models." in refused.content.decode()
    saved = client.post(
        url, {"classroom": people.classroom.pk, "allowed_models": [demo_model.pk], "default_model": demo_model.pk}
    )
    assert saved.status_code == 302
    assert classroom_allowed_model_ids(classroom=people.classroom) == {demo_model.pk}


@pytest.mark.django_db
def test_a_teacher_switches_comparing_off_and_on_for_the_class(people: People, client: Any) -> None:
    from apps.providers.models import ClassModelAccess
    from apps.providers.selectors import classroom_compares

    client.force_login(people.teacher)
    url = reverse("class-models", args=[people.classroom.pk])
    assert 'name="compare_enabled"' in client.get(url).content.decode()
    assert client.post(url, {"default_model": ""}).status_code == 302  # the box left unticked
    assert classroom_compares(classroom=people.classroom) is False
    assert 'name="compare_enabled" checked' not in client.get(url).content.decode()
    client.post(url, {"compare_enabled": "on"})
    assert ClassModelAccess.objects.get(classroom=people.classroom).compare_enabled is True


def test_a_conversation_whose_model_was_switched_off_opens_on_the_class_default(
    people: People, demo_model: ChatModel, fake_model: ChatModel, keyed_model: ChatModel
) -> None:
    """The teacher switched the conversation's model off and made another the default: the
    conversation opens on that default, not on whichever model comes first in the menu."""
    from apps.conversations.services import turn_begin
    from apps.providers.services import credential_create

    credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="class", classroom=people.classroom, api_key="sk-1"
    )
    class_models_set(classroom=people.classroom, allowed_models=[keyed_model], default_model=keyed_model)
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=keyed_model,
        content="hello",
        request_id="r-switched-off",
    )
    class_models_set(classroom=people.classroom, allowed_models=[demo_model, fake_model], default_model=fake_model)
    student = Client()
    student.force_login(people.student)
    page = student.get(reverse("conversation", args=[rows.conversation.pk])).content.decode()
    menu = page[page.index('<select id="model"') :]
    options = re.findall(r'<option value="([^"]*)"( selected)?[ >]', menu[: menu.index("</select>")])
    assert [value for value, _ in options] == ["demo/demo-tutor", "fakeai/fake-model"]
    assert [value for value, chosen in options if chosen] == ["fakeai/fake-model"]
