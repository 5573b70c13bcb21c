"""User-typed base URLs cannot reach the server's own network (SSRF), in any spelling,
after DNS, or through a redirect."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from apps.conversations.models import Message
from apps.providers.models import ChatModel, Credential
from apps.providers.netguard import BlockedURL, url_check_public
from apps.providers.routes import key_check_route
from apps.providers.selectors import providers_with_status
from apps.providers.services import KeyMaterial, _seal_into, credential_create
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

BLOCKED = [
    "http://127.0.0.1:8000/v1",
    "http://localhost/v1",  # a name that resolves to loopback
    "http://2130706433/v1",  # decimal 127.0.0.1
    "http://0177.0.0.1/v1",  # octal
    "http://0x7f.1/v1",  # hex, short form
    "http://127.1/v1",
    "http://[::1]/v1",
    "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/v1",
    "http://[64:ff9b::a9fe:a9fe]/v1",  # NAT64 of the metadata address
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://[fd00::1]/v1",
    "http://10.0.0.5/v1",
    "http://172.16.3.4/v1",
    "http://192.168.1.10/v1",
    "http://100.64.0.1/v1",  # carrier-grade NAT
    "http://0.0.0.0/v1",
    "http://user:pw@api.openai.com/v1",  # userinfo
    "http://api.openai.com@127.0.0.1/v1",  # userinfo trick
    "http://api.openai.com\\@127.0.0.1/v1",
    "ftp://api.openai.com/v1",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http:///v1",
    # IPv6 forms that carry a private IPv4 address, or are deprecated / local by definition
    "http://[::7f00:1]/v1",  # IPv4-compatible 127.0.0.1
    "http://[::a9fe:a9fe]/v1",  # IPv4-compatible metadata address
    "http://[::ffff:0:7f00:1]/v1",  # SIIT (IPv4-translated) 127.0.0.1
    "http://[64:ff9b:1::7f00:1]/v1",  # local-use NAT64 prefix
    "http://[64:ff9b::7f00:1]/v1",  # well-known NAT64 of loopback
    "http://[fec0::1]/v1",  # site-local
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/v1",  # Teredo
    "http://[2002:7f00:1::]/v1",  # 6to4 of loopback
    "http://[2002:a9fe:a9fe::1]/v1",  # 6to4 of the metadata address
    "http://[2001:4860:1:1:0:5efe:a00:5]/v1",  # ISATAP interface id carrying 10.0.0.5
    "http://[fe80::1%25eth0]/v1",  # link-local with a zone
    # ports: only 80, 443 and 1024-65535
    "https://8.8.8.8:0/v1",
    "https://8.8.8.8:22/v1",
    "http://8.8.8.8:25/v1",
    "https://api.openai.com:1023/v1",
]

# Spellings no parser should be trusted with: each is a plain "not allowed" error, never a crash.
MALFORMED = [
    "http://[::1",
    "http://[127.0.0.1]/v1",
    "http://[::1]x/v1",
    "http://a]b/v1",
    "http://[v1.x]/v1",
    "http://8.8.8.8:99999/v1",
    "http://8.8.8.8:-1/v1",
    "http://8.8.8.8:http/v1",
    "http://8.8.8.8/v1?key=1",
    "http://8.8.8.8/v1#top",
    "http://exa\x00mple.com/v1",
    "http://" + "a" * 70 + ".com/v1",  # a label over 63 characters
    "http://a..b.com/v1",
    "http://%31%32%37.0.0.1/v1",
    "http://例子.com/v1",
    "http://[::1]:8000:80/v1",
]


@pytest.mark.parametrize("url", BLOCKED)
def test_private_and_tricky_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedURL):
        url_check_public(url)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused_with_a_message_not_a_crash(url: str) -> None:
    with pytest.raises(BlockedURL) as refused:
        url_check_public(url)
    assert str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/v1",
        "http://[2001:4860:4860::8888]/v1",
        "https://8.8.8.8:8443/v1",
        "http://8.8.8.8:80/v1",
        "https://[64:ff9b::808:808]/v1",
        "http://[2002:808:808::1]/v1",
        "http://[::ffff:8.8.8.8]:11434/v1",
    ],
)
def test_public_addresses_pass(url: str) -> None:
    assert url_check_public(url) == url


def test_an_admin_can_allow_a_school_network(settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/24"]
    assert url_check_public("http://10.20.0.5:8000/v1") == "http://10.20.0.5:8000/v1"
    with pytest.raises(BlockedURL):
        url_check_public("http://10.21.0.5/v1")


@pytest.fixture
def keyed_model(keyed_model: ChatModel, settings: Any) -> ChatModel:
    """The keyed provider with no network allowed for teachers' and students' keys (the
    default): its server's 127.0.0.1 is internal here."""
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    return keyed_model


@pytest.mark.django_db
def test_teacher_cannot_save_a_key_for_an_internal_url(people: People, keyed_model: ChatModel) -> None:
    with pytest.raises(ValidationError) as error:
        credential_create(
            actor=people.teacher,
            provider=keyed_model.provider,
            scope="class",
            classroom=people.classroom,
            api_key="sk-class-key-1234",
            base_url="http://127.0.0.1:6379",
        )
    assert list(error.value.message_dict) == ["base_url"]
    assert Credential.objects.count() == 0


@pytest.mark.django_db
def test_admin_site_keys_may_point_at_localhost(people: People, keyed_model: ChatModel) -> None:
    credential = credential_create(
        actor=people.admin,
        provider=keyed_model.provider,
        scope="site",
        api_key="ollama",
        base_url="http://127.0.0.1:11434/v1",
    )
    assert credential.base_url == "http://127.0.0.1:11434/v1"


def _typed_url_key(people: People, model: ChatModel, base_url: str) -> Credential:
    """A class key whose URL passed the entry check earlier, but whose name now resolves
    (or redirects) somewhere internal: written directly, as DNS changing under us would."""
    credential = Credential(
        public_id=uuid.uuid4(),
        provider=model.provider,
        scope="class",
        owner=people.teacher,
        classroom=people.classroom,
        base_url=base_url,
    )
    _seal_into(credential, KeyMaterial(api_key="sk-class-key-1234"))
    credential.save()
    return credential


@pytest.mark.django_db(transaction=True)
async def test_name_resolving_to_loopback_is_refused_when_connecting(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    port = fake_upstream.base_url.rsplit(":", 1)[1].split("/")[0]
    from asgiref.sync import sync_to_async

    await sync_to_async(_typed_url_key)(people, keyed_model, f"http://localhost:{port}/v1")
    ws = await ws_connect(people.student)
    await ws.connect()

    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_blocked"
    assert fake_upstream.chat_requests() == []
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.error_code) == ("failed", "upstream_blocked")
    await ws.disconnect()


@pytest.mark.django_db
@pytest.mark.parametrize("scope", ["class", "user"])
def test_a_teachers_or_students_key_cannot_use_a_providers_own_internal_address(
    people: People, keyed_model: ChatModel, scope: str
) -> None:
    """The custom provider ships with Ollama's address on loopback: a key without a URL of
    its own would send a student's chosen key and body there, with no admin's say."""
    with pytest.raises(ValidationError) as error:
        credential_create(
            actor=people.teacher,
            provider=keyed_model.provider,  # its own URL: the fake upstream on 127.0.0.1
            scope=scope,
            classroom=people.classroom if scope == "class" else None,
            api_key="student-chosen-token",
        )
    assert list(error.value.message_dict) == ["base_url"]
    with translation.override("en"):
        assert "only a site key" in str(error.value.message_dict["base_url"][0])
    assert not Credential.objects.exists()
    site = credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key="ollama")
    assert site.base_url == ""


@pytest.mark.django_db
def test_every_teachers_or_students_key_is_held_to_public_addresses_an_admins_is_not(
    people: People, keyed_model: ChatModel, settings: Any
) -> None:
    """Whether its URL was typed or is its provider's own: the connection-time check decides
    for a name that resolves somewhere internal (which the key form cannot know)."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # so the form takes the keys at all
    class_key = credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="class", classroom=people.classroom, api_key="k-1"
    )
    site_key = credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key="k-2")
    assert class_key.base_url == site_key.base_url == ""
    assert key_check_route(credential=class_key).user_supplied_url is True
    assert key_check_route(credential=site_key).user_supplied_url is False


@pytest.mark.django_db(transaction=True)
async def test_a_key_saved_before_on_a_providers_internal_address_is_not_offered(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """A key without a URL of its own, saved before the form refused it (or before an admin
    closed the network again), would only ever be refused: it is passed over, and a site
    key, if there is one, is used instead."""
    from asgiref.sync import sync_to_async

    await sync_to_async(_typed_url_key)(people, keyed_model, "")
    status = await sync_to_async(providers_with_status)(user=people.student, classroom=people.classroom)
    assert dict((provider.slug, source) for provider, source in status)["keyedai"] == ""
    ws = await ws_connect(people.student)
    await ws.connect()
    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")
    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "no_credential"
    assert fake_upstream.chat_requests() == []

    await sync_to_async(credential_create)(
        actor=people.admin, provider=keyed_model.provider, scope="site", api_key="ollama"
    )
    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")
    assert frames[-1]["type"] == "chat.done"
    [request] = fake_upstream.chat_requests()
    assert {k.lower(): v for k, v in request.headers.items()}["authorization"] == "Bearer ollama"
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_redirect_to_an_internal_address_is_refused(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    # "Public" here is 127.0.0.2, which the admin allowed; the redirect goes to 127.0.0.1.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    outside = FakeUpstream(host="127.0.0.2").start()
    try:
        outside.default = Behaviour(redirect_to=f"{fake_upstream.base_url}/chat/completions")
        from asgiref.sync import sync_to_async

        await sync_to_async(_typed_url_key)(people, keyed_model, outside.base_url)
        ws = await ws_connect(people.student)
        await ws.connect()

        frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

        assert len(outside.chat_requests()) == 1  # the allowed host was reached...
        assert fake_upstream.chat_requests() == []  # ...its redirect inward was not followed
        assert frames[-1]["code"] == "upstream_blocked"
        await ws.disconnect()
    finally:
        outside.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("embedded", ["::ffff:0:7f00:1", "::7f00:1", "64:ff9b::7f00:1"])
async def test_ipv6_forms_of_loopback_are_refused_when_connecting(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream, embedded: str
) -> None:
    """A key whose stored URL never met the entry check (DNS changing, an old row): the
    connect-time check judges the IPv4 address inside the IPv6 one, the same way."""
    from asgiref.sync import sync_to_async

    port = fake_upstream.base_url.rsplit(":", 1)[1].split("/")[0]
    await sync_to_async(_typed_url_key)(people, keyed_model, f"http://[{embedded}]:{port}/v1")
    ws = await ws_connect(people.student)
    await ws.connect()

    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_blocked"
    assert fake_upstream.chat_requests() == []
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_redirect_to_a_disallowed_port_is_refused(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    # The allowed host redirects to port 25 of the same (allowed) address: the port rule
    # holds at connect time, for every hop. Refused by policy, not "unreachable".
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    outside = FakeUpstream(host="127.0.0.2").start()
    try:
        outside.default = Behaviour(redirect_to="http://127.0.0.2:25/v1/chat/completions")
        from asgiref.sync import sync_to_async

        await sync_to_async(_typed_url_key)(people, keyed_model, outside.base_url)
        ws = await ws_connect(people.student)
        await ws.connect()

        frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

        assert len(outside.chat_requests()) == 1
        assert frames[-1]["code"] == "upstream_blocked"
        await ws.disconnect()
    finally:
        outside.stop()
