"""The gateway's pages: a user's API keys (shown once), a class's API page for its teachers
(the switch, revoking students' keys) and "Use the API"."""

from __future__ import annotations

import html
import logging
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

# Loading the ASGI app sets Django's logging up again, which drops pytest's log capture:
# load it now, before any test captures logs.
import webchat.asgi  # noqa: E402,F401,I001
from apps.accounts.models import AuditEvent, User
from apps.accounts.selectors import classroom_for_student
from apps.accounts.services import classroom_archive, classroom_get_or_create, enrollment_add
from apps.gateway.models import ApiKey, ClassApiAccess
from apps.gateway.selectors import api_key_user
from apps.gateway.services import ACTIVE_KEYS_PER_USER, api_key_create, api_key_revoke, class_api_access_set
from apps.providers.models import ChatModel
from apps.providers.services import class_models_set
from tests.conftest import LiveServer, People
from webchat.errors import ErrorCode, RequestRefused

KEY_PATTERN = re.compile(r"wc-[A-Za-z0-9_-]{43}")


def logged_in(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def form_token(client: Client) -> str:
    """The one-time token of the key form, as the page hands it out."""
    found = re.search(r'name="form_token" value="([^"]+)"', client.get(reverse("api-keys")).content.decode())
    assert found
    return found[1]


def create_on_page(client: Client, **fields: str) -> tuple[Any, str]:
    data = {"name": "laptop", "expires_in_days": "", "form_token": form_token(client), **fields}
    response = client.post(reverse("api-keys"), data)
    found = KEY_PATTERN.findall(response.content.decode())
    return response, found[0] if found else ""


# --- /api-keys/ ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_student_creates_a_key_and_it_is_shown_once_with_a_copy_button(people: People) -> None:
    client = logged_in(people.student)
    response, key = create_on_page(client, name="laptop", expires_in_days="30")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert key and 'data-copy="new-key"' in page and "will not be shown again" in page
    row = ApiKey.objects.get(user=people.student)
    assert row.name == "laptop" and key.startswith(row.prefix)
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    assert api_key_user(presented=key) == people.student

    # The list afterwards: the key's prefix and status, never the key.
    listing = client.get(reverse("api-keys")).content.decode()
    assert key not in listing and f"{row.prefix}…" in listing and 'data-status="active"' in listing


@pytest.mark.django_db
def test_the_full_key_never_appears_in_any_later_response_the_session_or_the_logs(
    people: People, demo_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = logged_in(people.student)
    _, key = create_on_page(client)
    assert key
    assert key not in str(dict(client.session.items()))
    later = [
        client.get(reverse("api-keys")),
        client.get(reverse("api-guide")),
        client.get(reverse("home")),
        client.get(reverse("providers")),
        client.post(reverse("api-keys"), {"name": "", "form_token": form_token(client)}),  # a refused form
    ]
    teacher = logged_in(people.teacher)
    later.append(teacher.get(reverse("class-api", args=[people.classroom.pk])))
    for response in later:
        assert key not in response.content.decode()
        assert key not in str(response.headers)
    assert key not in caplog.text


@pytest.mark.django_db
def test_reloading_the_page_that_showed_a_new_key_makes_no_second_key(people: People) -> None:
    """The key is shown in the answer to the POST; the browser's reload sends that POST
    again, with the form's token already spent: nothing is made, and the page says why."""
    client = logged_in(people.student)
    token = form_token(client)
    first = client.post(reverse("api-keys"), {"name": "laptop", "form_token": token})
    assert first.status_code == 200 and KEY_PATTERN.search(first.content.decode())
    again = client.post(reverse("api-keys"), {"name": "laptop", "form_token": token}, follow=True)
    assert again.redirect_chain == [(reverse("api-keys"), 302)]
    page = again.content.decode()
    assert "already been sent" in page and not KEY_PATTERN.search(page)
    assert ApiKey.objects.filter(user=people.student).count() == 1


@pytest.mark.django_db
def test_a_key_form_without_this_sessions_token_makes_nothing(people: People) -> None:
    other = logged_in(people.classmate)
    stolen = form_token(other)  # issued to another session
    client = logged_in(people.student)
    form_token(client)
    for data in ({"name": "x"}, {"name": "x", "form_token": stolen}, {"name": "x", "form_token": "made-up"}):
        assert client.post(reverse("api-keys"), data).status_code == 302
    assert not ApiKey.objects.exists()
    # A token is spent once, also by a form that was refused.
    token = form_token(client)
    assert client.post(reverse("api-keys"), {"name": "", "form_token": token}).status_code == 400
    assert client.post(reverse("api-keys"), {"name": "ok", "form_token": token}).status_code == 302


@pytest.mark.django_db
def test_the_page_lists_only_the_users_own_keys(people: People) -> None:
    mine, _ = api_key_create(user=people.student, name="mine")
    theirs, _ = api_key_create(user=people.classmate, name="theirs")
    page = logged_in(people.student).get(reverse("api-keys")).content.decode()
    assert mine.prefix in page and theirs.prefix not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": ""}, "Give the key a name."),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"expires_in_days": "0"}, "greater than or equal to 1"),
        ({"expires_in_days": "-3"}, "greater than or equal to 1"),
        ({"expires_in_days": "366"}, "less than or equal to 365"),
        ({"expires_in_days": "soon"}, "Enter a whole number."),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_writes_nothing(
    people: People, fields: dict[str, str], error: str
) -> None:
    response, key = create_on_page(logged_in(people.student), **fields)
    assert response.status_code == 400 and error in response.content.decode()
    assert not key and not ApiKey.objects.exists()


@pytest.mark.django_db
def test_a_user_may_hold_only_so_many_active_keys(people: People) -> None:
    keys = [api_key_create(user=people.student, name=f"k{n}")[0] for n in range(ACTIVE_KEYS_PER_USER)]
    client = logged_in(people.student)
    response, key = create_on_page(client)
    assert response.status_code == 400 and "Revoke one you no longer use" in response.content.decode()
    assert not key and ApiKey.objects.count() == ACTIVE_KEYS_PER_USER
    api_key_revoke(key=keys[0])  # a revoked key no longer counts
    response, key = create_on_page(client)
    assert response.status_code == 200 and key


@pytest.mark.django_db
def test_an_expired_key_does_not_count_and_shows_as_expired(people: People) -> None:
    api_key_create(user=people.student, name="old", expires_at=timezone.now() - timedelta(days=1))
    page = logged_in(people.student).get(reverse("api-keys")).content.decode()
    assert 'data-status="expired"' in page


@pytest.mark.django_db
def test_a_student_revokes_their_own_key(people: People) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    client = logged_in(people.student)
    response = client.post(reverse("api-key-revoke", args=[row.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("api-keys")
    row.refresh_from_db()
    assert row.revoked_at is not None
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)
    assert 'data-status="revoked"' in client.get(reverse("api-keys")).content.decode()


@pytest.mark.django_db
def test_a_student_cannot_revoke_another_students_key(people: People) -> None:
    row, key = api_key_create(user=people.classmate)
    response = logged_in(people.student).post(reverse("api-key-revoke", args=[row.pk]))
    assert response.status_code == 404
    assert api_key_user(presented=key) == people.classmate


@pytest.mark.django_db
def test_the_wrong_method_is_refused(people: People) -> None:
    row, _ = api_key_create(user=people.student)
    client = logged_in(people.student)
    assert client.get(reverse("api-key-revoke", args=[row.pk])).status_code == 405
    assert client.put(reverse("api-keys")).status_code == 405
    assert client.post(reverse("api-guide")).status_code == 405
    teacher = logged_in(people.teacher)
    assert teacher.get(reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk])).status_code == 405
    assert teacher.put(reverse("class-api", args=[people.classroom.pk])).status_code == 405
    assert ApiKey.objects.get().revoked_at is None


@pytest.mark.django_db
def test_someone_logged_out_is_sent_to_log_in(people: People) -> None:
    for url in (reverse("api-keys"), reverse("api-guide"), reverse("class-api", args=[people.classroom.pk])):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- the class's API page ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_class_page_lists_its_students_keys_only(people: People) -> None:
    mine, _ = api_key_create(user=people.student, name="laptop")
    classmates, _ = api_key_create(user=people.classmate, name="lab")
    outsiders, _ = api_key_create(user=people.other_student, name="elsewhere")
    for teacher in (people.teacher, people.co_teacher, people.admin):
        response = logged_in(teacher).get(reverse("class-api", args=[people.classroom.pk]))
        page = response.content.decode()
        assert response.status_code == 200
        assert mine.prefix in page and classmates.prefix in page and outsiders.prefix not in page
        assert 'data-api="on"' in page


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["other_teacher", "student"])
def test_only_the_classs_teachers_may_open_or_change_its_api_page(people: People, who: str) -> None:
    row, key = api_key_create(user=people.student)
    client = logged_in(getattr(people, who))
    url = reverse("class-api", args=[people.classroom.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"enabled": "off"}).status_code == 404
    assert client.post(reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk])).status_code == 404
    assert not ClassApiAccess.objects.exists() and api_key_user(presented=key) == people.student


@pytest.mark.django_db
def test_a_teacher_cannot_revoke_a_key_of_a_student_outside_the_class(people: People) -> None:
    row, key = api_key_create(user=people.other_student)
    response = logged_in(people.teacher).post(reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk]))
    assert response.status_code == 404
    assert api_key_user(presented=key) == people.other_student


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["admin", "co_teacher", "other_teacher"])
def test_a_teacher_neither_sees_nor_revokes_the_key_of_an_admin_or_teacher_enrolled_in_the_class(
    people: People, who: str
) -> None:
    """Someone enrolled an admin's or a teacher's account in the class: its keys are not the
    class's teacher's to see or end (as its password is not theirs to reset)."""
    account = getattr(people, who)
    enrollment_add(classroom=people.classroom, student=account)
    row, key = api_key_create(user=account, name="admin-script")
    client = logged_in(people.teacher)
    assert "admin-script" not in client.get(reverse("class-api", args=[people.classroom.pk])).content.decode()
    response = client.post(reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk]))
    assert response.status_code == 404
    assert api_key_user(presented=key) == account


@pytest.mark.django_db
def test_a_teachers_revoke_stops_the_key_and_is_audited(people: People) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    client = logged_in(people.teacher)
    url = reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk])
    assert client.post(url).status_code == 302
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.REVOKE_API_KEY and event.actor == people.teacher
    assert event.subject == people.student and event.classroom == people.classroom and row.prefix in event.detail
    client.post(url)  # again: nothing more to record
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_switch_turns_the_classs_keys_off_and_on_and_is_audited(people: People) -> None:
    _, key = api_key_create(user=people.student)
    _, outsiders_key = api_key_create(user=people.other_student)
    client = logged_in(people.teacher)
    url = reverse("class-api", args=[people.classroom.pk])

    assert client.post(url, {"enabled": "off"}).status_code == 302
    with pytest.raises(RequestRefused) as refused:
        api_key_user(presented=key)
    assert refused.value.code == ErrorCode.API_ACCESS_OFF
    assert api_key_user(presented=outsiders_key) == people.other_student  # another class: untouched
    assert 'data-api="off"' in client.get(url).content.decode()

    assert client.post(url, {"enabled": "on"}).status_code == 302
    assert api_key_user(presented=key) == people.student
    actions = list(AuditEvent.objects.order_by("created_at", "id").values_list("action", "actor"))
    assert actions == [
        (AuditEvent.Action.API_ACCESS_OFF, people.teacher.pk),
        (AuditEvent.Action.API_ACCESS_ON, people.teacher.pk),
    ]
    access = ClassApiAccess.objects.get(classroom=people.classroom)
    assert access.enabled and access.changed_by == people.teacher


@pytest.mark.django_db
def test_an_admin_switches_a_class_through_the_service_so_it_is_audited(people: People) -> None:
    _, key = api_key_create(user=people.student)
    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=True)  # the row to act on
    access = ClassApiAccess.objects.get()
    client = logged_in(people.admin)
    url = reverse("admin:gateway_classapiaccess_changelist")
    assert client.get(url).status_code == 200
    client.post(url, {"action": "switch_off", "_selected_action": [access.pk]})
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.API_ACCESS_OFF and event.actor == people.admin


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["", "maybe", "true"])
def test_a_bad_switch_value_changes_nothing(people: People, value: str) -> None:
    response = logged_in(people.teacher).post(reverse("class-api", args=[people.classroom.pk]), {"enabled": value})
    assert response.status_code == 400
    assert not ClassApiAccess.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_class_page_does_not_grow_queries_per_key(people: People, django_assert_max_num_queries: Any) -> None:
    client = logged_in(people.teacher)
    url = reverse("class-api", args=[people.classroom.pk])
    api_key_create(user=people.student)
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    for n in range(5):
        api_key_create(user=people.classmate, name=f"k{n}")
        api_key_create(user=people.student, name=f"k{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


@pytest.mark.django_db
def test_the_class_settings_page_links_the_api_page(people: People) -> None:
    page = logged_in(people.teacher).get(reverse("class-settings", args=[people.classroom.pk])).content.decode()
    assert reverse("class-api", args=[people.classroom.pk]) in page


# --- the switch in api_key_user ----------------------------------------------------------


@pytest.mark.django_db
def test_identifying_a_key_is_one_query_with_the_class_switch(people: People, django_assert_num_queries: Any) -> None:
    _, key = api_key_create(user=people.student)
    api_key_user(presented=key)  # writes last_used_at
    with django_assert_num_queries(1):
        assert api_key_user(presented=key) == people.student
    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=False)
    with django_assert_num_queries(1), pytest.raises(RequestRefused):
        api_key_user(presented=key)


@pytest.mark.django_db
def test_the_switch_that_counts_is_that_of_the_class_classroom_for_student_picks(people: People) -> None:
    """api_key_user reads the class in its own query; it must agree with classroom_for_student:
    the newest enrollment in a class that is not archived."""
    _, key = api_key_create(user=people.student)
    newer, _ = classroom_get_or_create(name="Robotics club", teacher=people.teacher)
    enrollment_add(classroom=newer, student=people.student)
    assert classroom_for_student(user=people.student) == newer

    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=False)
    assert api_key_user(presented=key) == people.student  # the older class's switch does not count
    class_api_access_set(actor=people.teacher, classroom=newer, enabled=False)
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)
    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=True)
    classroom_archive(classroom=newer, archived=True)
    assert classroom_for_student(user=people.student) == people.classroom
    assert api_key_user(presented=key) == people.student  # archived: back to the older class


@pytest.mark.django_db
def test_a_refused_key_is_not_told_about_its_class(people: People) -> None:
    row, key = api_key_create(user=people.student)
    api_key_revoke(key=row)
    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=False)
    with pytest.raises(RequestRefused) as refused:
        api_key_user(presented=key)
    assert refused.value.code == ErrorCode.INVALID_API_KEY


# --- over HTTP with the openai SDK -------------------------------------------------------

MODEL = "fakeai/fake-model"
ASK = [{"role": "user", "content": "Say hello"}]


def sdk(live_asgi: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=live_asgi.url + "/v1", max_retries=0)


@pytest.mark.django_db(transaction=True)
def test_switching_the_api_off_answers_403_and_on_again_works(
    live_asgi: LiveServer, fake_model: ChatModel, people: People
) -> None:
    _, key = api_key_create(user=people.student)
    teacher = logged_in(people.teacher)
    url = reverse("class-api", args=[people.classroom.pk])
    teacher.post(url, {"enabled": "off"})
    with pytest.raises(openai.PermissionDeniedError) as error:
        sdk(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK)
    assert error.value.code == "api_access_off"
    assert set(error.value.body) >= {"message", "type", "code"}  # type: ignore[arg-type]
    teacher.post(url, {"enabled": "on"})
    completion = sdk(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK)
    assert completion.choices[0].message.content == "Hello, class!"


@pytest.mark.django_db(transaction=True)
def test_a_key_a_teacher_revoked_fails_authentication(
    live_asgi: LiveServer, fake_model: ChatModel, people: People
) -> None:
    row, key = api_key_create(user=people.student)
    assert sdk(live_asgi, key).models.list().data
    logged_in(people.teacher).post(reverse("class-api-key-revoke", args=[people.classroom.pk, row.pk]))
    with pytest.raises(openai.AuthenticationError) as error:
        sdk(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK)
    assert error.value.code == "invalid_api_key"


# --- /api/ ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_guide_shows_the_base_url_the_models_and_the_key_prefixes_but_no_key(
    people: People, fake_model: ChatModel
) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    revoked, _ = api_key_create(user=people.student, name="old")
    api_key_revoke(key=revoked)
    response = logged_in(people.student).get(reverse("api-guide"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "http://testserver/v1" in page and MODEL in page
    assert f"{row.prefix}…" in page and revoked.prefix not in page
    assert key not in page and not KEY_PATTERN.search(page)
    assert "OPENAI_API_KEY=paste-your-key-here" in page and "MODEL_NAME=" in page
    assert "<code>http://testserver/demo/v1</code>" in page  # whole, as the base URL is
    # How to get errors in English, since the SDK sends no Accept-Language (zh-hans is the default).
    assert 'OpenAI(default_headers={"Accept-Language": "en"})' in page


@pytest.mark.django_db
def test_a_student_whose_class_switched_the_api_off_is_told_so_on_both_pages(people: People) -> None:
    notice = "API access is switched off for your class"
    client = logged_in(people.student)
    assert notice not in client.get(reverse("api-keys")).content.decode()
    class_api_access_set(actor=people.teacher, classroom=people.classroom, enabled=False)
    assert notice in client.get(reverse("api-keys")).content.decode()
    assert notice in client.get(reverse("api-guide")).content.decode()
    assert notice not in logged_in(people.other_student).get(reverse("api-guide")).content.decode()


@pytest.mark.django_db
def test_the_guide_sends_someone_without_a_key_to_create_one(people: People) -> None:
    page = logged_in(people.teacher).get(reverse("api-guide")).content.decode()
    assert "You have no active key yet." in page and reverse("api-keys") in page


@pytest.mark.django_db
def test_the_guide_speaks_chinese_by_default(people: People) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(people.student)
    page = client.get(reverse("api-guide")).content.decode()
    assert '<html lang="zh-hans"' in page


@pytest.mark.django_db
def test_the_navigation_links_the_guide_and_names_the_provider_keys_page_apart(people: People) -> None:
    page = logged_in(people.teacher).get(reverse("home")).content.decode()
    nav = page[page.index('<nav class="topnav"') : page.index("</nav>")]
    assert reverse("api-guide") in nav and "Provider keys" in nav


def code_block(page: str, block_id: str) -> str:
    match = re.search(rf'<code id="{block_id}">(.*?)</code>', page, re.S)
    assert match, block_id
    return html.unescape(match.group(1))


def guide_for_live_server(live_asgi: LiveServer, people: People, fake_model: ChatModel) -> tuple[str, str]:
    """The guide as the student sees it, with the fake model as the class default, and a key."""
    _, key = api_key_create(user=people.student)
    class_models_set(classroom=people.classroom, allowed_models=[], default_model=fake_model)
    page = logged_in(people.student).get(reverse("api-guide")).content.decode()
    return page.replace("http://testserver/v1", live_asgi.url + "/v1"), key


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("program", ["code-python", "code-stream"])
def test_the_guides_python_runs_as_shown_with_a_real_key(
    live_asgi: LiveServer, fake_model: ChatModel, people: People, tmp_path: Path, program: str
) -> None:
    """The page's own .env and Python, copied as a student would, with their key pasted in."""
    page, key = guide_for_live_server(live_asgi, people, fake_model)
    assert f"MODEL_NAME={MODEL}" in page  # the class's default model is the one filled in
    env = code_block(page, "code-env").replace("paste-your-key-here", key)
    (tmp_path / ".env").write_text(env, encoding="utf-8")
    (tmp_path / "main.py").write_text(code_block(page, program), encoding="utf-8")
    # load_dotenv() keeps variables already set: the program must see only its .env.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OPENAI_")}
    run = subprocess.run(
        [sys.executable, "main.py"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "Hello, class!" in run.stdout and "total_tokens" in run.stdout


@pytest.mark.django_db(transaction=True)
def test_the_guides_curl_runs_as_shown_with_a_real_key(
    live_asgi: LiveServer, fake_model: ChatModel, people: People, tmp_path: Path
) -> None:
    page, key = guide_for_live_server(live_asgi, people, fake_model)
    script = code_block(page, "code-curl").replace("paste-your-key-here", key)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Hello, class!" in run.stdout and '"usage"' in run.stdout


# The openai and dotenv npm packages, pinned in package.json (devDependencies) and installed
# by `make test` with the front-end packages.
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


@pytest.mark.django_db(transaction=True)
def test_the_guides_node_program_runs_as_shown_with_a_real_key(
    live_asgi: LiveServer, fake_model: ChatModel, people: People, tmp_path: Path
) -> None:
    page, key = guide_for_live_server(live_asgi, people, fake_model)
    (tmp_path / ".env").write_text(code_block(page, "code-env").replace("paste-your-key-here", key), encoding="utf-8")
    (tmp_path / "index.mjs").write_text(code_block(page, "code-node"), encoding="utf-8")
    assert (NODE_MODULES / "openai").is_dir(), "make test installs the npm packages (npm ci)"
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OPENAI_")}
    run = subprocess.run(
        ["node", "index.mjs"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "Hello, class!" in run.stdout and "total_tokens" in run.stdout


@pytest.mark.django_db
def test_the_guide_and_side_by_side_have_a_presentation_view_with_nothing_personal(
    people: People, fake_model: ChatModel, client: Client
) -> None:
    """A teacher projects "Use the API" and the side-by-side page in class: large type, no
    navigation, and no one's key prefixes or name."""
    row, _key = api_key_create(user=people.teacher, name="teacher laptop")
    client.force_login(people.teacher)
    normal = client.get(reverse("api-guide")).content.decode()
    assert 'id="present-enter"' in normal and "?present=1" in normal
    for name in ("api-guide", "compare", "api-keys"):
        page = client.get(reverse(name) + "?present=1").content.decode()
        assert 'class="presenting"' in page and 'id="present-leave"' in page
        assert row.prefix not in page and "teacher laptop" not in page
        assert str(people.teacher) not in page and "topnav" not in page
    client.force_login(people.student)
    assert 'id="present-enter"' not in client.get(reverse("api-guide")).content.decode()  # teachers project
