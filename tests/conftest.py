"""Shared fixtures: two schools' worth of people, the fake upstream, a live ASGI server and
websocket helpers. Test data is built through the services, not raw model writes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import os
import socket
import tempfile
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.accounts.models import Classroom, User
from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert
from apps.providers.catalog import ProviderEntry, catalog_apply
from apps.providers.models import ChatModel, ModelPrice, Provider
from apps.providers.services import catalog_demo_ensure
from tests.fake_upstream import FakeUpstream

PASSWORD = "correct-horse-battery-42"

# A run that leaves an untracked file in the checkout fails (tests/repository_hygiene.py).
pytest_plugins = ["tests.repository_hygiene"]


def pytest_configure(config: Any) -> None:
    from django.conf import settings

    # The SQLite test database is a file (WAL, real locking across threads), in a directory
    # of this run's own: two runs at once never share it, and the checkout stays clean.
    # Every test calls the public demo endpoint from 127.0.0.1; the test of its per-address
    # limit sets its own.
    settings.DEMO_PUBLIC_RPM = 100_000
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "webchat.sqlite":
        run_dir = Path(tempfile.mkdtemp(prefix="webchat-tests-"))
        database.setdefault("TEST", {})["NAME"] = str(run_dir / "test.sqlite3")


ORIGIN = b"http://127.0.0.1"


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """`make test` runs the suite on SQLite and again on PostgreSQL + Redis. With
    SAME_ON_EVERY_BACKEND=once (the PostgreSQL run), the tests marked backend_free, which
    start their own subprocesses or sockets and touch none of the run's backends, are left
    to the SQLite run: the same test twice would test the same thing twice."""
    if os.environ.get("SAME_ON_EVERY_BACKEND") != "once":
        return
    kept = [item for item in items if item.get_closest_marker("backend_free") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("backend_free")])
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def stray_postgres_sessions_closed(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Each async test runs on its own event loop, whose pool threads open their own
    database connections; the loop ends with the test but a dead thread's connection is
    only closed when garbage collected. (A server's one long-lived loop reuses its threads,
    and their connections are closed after each step.) On PostgreSQL such leftovers would
    keep the test database from being dropped, so they are ended before it is."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# What `flush` leaves between transactional tests: the rows Django's post_migrate makes.
KEPT_BY_FLUSH = frozenset({"django_content_type", "auth_permission"})


@pytest.fixture(scope="session", autouse=True)
def flush_keeps_content_types_and_permissions(django_db_setup: Any) -> Iterator[None]:
    """A transactional test ends with `flush`, which empties every table and sends
    post_migrate to make the content types and permissions again: some 30 ms of CPU (75 ms
    on PostgreSQL) after each of several hundred tests. They are the same rows every time (no
    test makes or removes one), so those two tables are left as they are and the signal is
    not sent. The rest is emptied with DELETE in one transaction (foreign keys are checked at
    its end): on PostgreSQL `flush`'s TRUNCATE of some 40 tables took 150 ms, DELETE 5 ms."""
    from django.db import connections, transaction
    from django.test import TransactionTestCase

    def _fixture_teardown(self: TransactionTestCase) -> None:
        for name in self._databases_names(include_mirrors=False):
            connection = connections[name]
            tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
            with transaction.atomic(using=name), connection.cursor() as cursor:
                for table in tables:
                    if table not in KEPT_BY_FLUSH:
                        cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")

    patch = pytest.MonkeyPatch()
    patch.setattr(TransactionTestCase, "_fixture_teardown", _fixture_teardown)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def fresh_billing_caches() -> Iterator[None]:
    """Site billing settings and prices are cached per process for a few seconds; tests
    change them at will, so each test starts (and ends) without the cache."""
    from apps.billing.selectors import limits_forget, site_billing_settings_forget
    from apps.providers.selectors import price_cache_forget

    site_billing_settings_forget()
    price_cache_forget()
    limits_forget()
    yield
    site_billing_settings_forget()
    price_cache_forget()
    limits_forget()


@pytest.fixture(autouse=True)
def fresh_shared_cache() -> None:
    """Each test starts with an empty Django cache. On the PostgreSQL pass it is Redis,
    shared by every test of the run and outliving it: one test's open-socket slots and
    throttle counters (keyed by user id, and ids repeat from test to test) refused the next
    one's socket or request."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Iterator[None]:
    """Each test gets its own channel layer. The layer remembers the event loop that is
    receiving on it and its Redis connections belong to that loop; every test runs its own
    loop (and a live server a loop of its own), so a layer kept from an earlier test may hold
    a read that loop left pending when it ended."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Real hashing costs ~0.2 s a user; the tests are about webchat, not PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class People:
    admin: User
    teacher: User
    co_teacher: User
    student: User
    classmate: User
    other_teacher: User
    other_student: User
    classroom: Classroom
    other_classroom: Classroom


@pytest.fixture
def people(db: Any) -> People:
    """School one: a teacher and co-teacher, two students in one class. School two: another
    teacher with a student of their own. And an admin over both."""
    make = lambda name, role: user_upsert(username=name, role=role, display_name=name.title(), password=PASSWORD)[0]  # noqa: E731
    admin = make("root", User.Role.ADMIN)
    teacher = make("teacher_wang", User.Role.TEACHER)
    co_teacher = make("teacher_zhao", User.Role.TEACHER)
    student = make("xiaoming", User.Role.STUDENT)
    classmate = make("xiaohong", User.Role.STUDENT)
    other_teacher = make("teacher_chen", User.Role.TEACHER)
    other_student = make("xiaogang", User.Role.STUDENT)
    classroom, _ = classroom_get_or_create(name="Class 7A", teacher=teacher)
    classroom.teachers.add(co_teacher)
    enrollment_add(classroom=classroom, student=student)
    enrollment_add(classroom=classroom, student=classmate)
    other_classroom, _ = classroom_get_or_create(name="Class 9C", teacher=other_teacher)
    enrollment_add(classroom=other_classroom, student=other_student)
    return People(
        admin, teacher, co_teacher, student, classmate, other_teacher, other_student, classroom, other_classroom
    )


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[FakeUpstream]:
    """One fake provider for the whole run: starting and stopping one per test cost time."""
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def fake_upstream(fake_upstream_server: FakeUpstream) -> Iterator[FakeUpstream]:
    """The session's fake provider, reset to its defaults before and after each test."""
    from apps.providers.client import access_tokens_forget

    # The server's address is the same in every test, so tokens it issued would be reused.
    access_tokens_forget()
    fake_upstream_server.reset()
    yield fake_upstream_server
    fake_upstream_server.reset()


def _fake_provider_entry(base_url: str) -> ProviderEntry:
    return {
        "slug": "fakeai",
        "name_en": "Fake AI",
        "name_zh": "假 AI",
        "base_url": base_url,
        "signup_url": "",
        "auth_style": "none",
        "is_demo": False,
        "sort_order": 50,
        "models": [
            {
                "name": "fake-model",
                "display_name": "Fake model",
                "context_window": 16000,
                "max_output_tokens": 2048,
                "input_per_million": "2.00",
                "output_per_million": "8.00",
                "currency": "CNY",
                "effective_from": "2025-01-01",
            }
        ],
    }


@pytest.fixture
def fake_model(db: Any, fake_upstream: FakeUpstream) -> ChatModel:
    """A provider in the catalog whose base URL is the fake upstream."""
    catalog_apply(
        entries=[_fake_provider_entry(fake_upstream.base_url)],
        provider_model=Provider,
        chat_model_model=ChatModel,
        price_model=ModelPrice,
    )
    return ChatModel.objects.select_related("provider").get(provider__slug="fakeai", name="fake-model")


@pytest.fixture
def keyed_model(db: Any, fake_upstream: FakeUpstream, settings: Any) -> ChatModel:
    """A provider that needs a bearer key, served by the fake upstream. Teachers' and
    students' keys reach only public addresses or the networks an admin allowed: the fake
    upstream's 127.0.0.1 is allowed, as a school lists its own model server's network."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    entry = _fake_provider_entry(fake_upstream.base_url)
    entry.update(
        {
            "slug": "keyedai",
            "name_en": "Keyed AI",
            "name_zh": "密钥 AI",
            "auth_style": "bearer",
            "env_key_var": "KEYEDAI_API_KEY",
        }
    )
    entry["models"][0]["name"] = "keyed-model"
    catalog_apply(entries=[entry], provider_model=Provider, chat_model_model=ChatModel, price_model=ModelPrice)
    return ChatModel.objects.select_related("provider").get(provider__slug="keyedai")


@pytest.fixture
def catalog(db: Any) -> None:
    """The shipped provider catalog. Transactional tests flush the tables, data-migration
    rows included, so tests that need it ask for it."""
    from apps.providers.catalog import CATALOG

    catalog_apply(entries=CATALOG, provider_model=Provider, chat_model_model=ChatModel, price_model=ModelPrice)


@pytest.fixture
def demo_model(db: Any) -> ChatModel:
    # Transactional tests flush the tables, data-migration rows included: ensure it exists.
    catalog_demo_ensure()
    return ChatModel.objects.select_related("provider").get(provider__slug="demo")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    port: int


@pytest.fixture
def live_asgi(transactional_db: Any, settings: Any) -> Iterator[LiveServer]:
    """The real ASGI app (HTTP and websockets) under uvicorn on 127.0.0.1, in a thread.
    INTERNAL_BASE_URL points at it, so the demo provider is reached over real HTTP."""
    from webchat.asgi import application

    port = _free_port()
    settings.INTERNAL_BASE_URL = f"http://127.0.0.1:{port}"
    # A connection a test left open (a client socket it never closed) would hold the
    # server's shutdown until the client is collected: after 2 s it is cut.
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        ws_max_size=262144,  # as the Dockerfile and scripts/run-embedded.sh serve it
        timeout_graceful_shutdown=2,
    )
    server = _PromptServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not server.ready.wait(timeout=5):
        raise RuntimeError("the live server did not start")
    yield LiveServer(url=f"http://127.0.0.1:{port}", port=port)
    server.stop()
    thread.join(timeout=10)


class _PromptServer(uvicorn.Server):
    """uvicorn as the tests run it: it says when it listens, and stops when told rather than
    at its next 0.1 s tick, without the fixed 0.1 s pause of its shutdown (about 0.2 s of
    each of some 130 tests). Open connections are still asked to finish and, after
    `timeout_graceful_shutdown`, cut; tasks still running then are cancelled."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self.on_tick(0)  # the Date header
        self.ready.set()
        await self._stopping.wait()

    def stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            with contextlib.suppress(Exception):
                # uvicorn's websockets-sansio protocol raises InvalidState for a socket the
                # browser is already closing (uvicorn's own tick usually let it finish first).
                connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110 (uvicorn keeps plain sets)
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel()
        for server in self.servers:
            await server.wait_closed()


def session_cookie_for(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# Every socket a test opens through the ASGI application, closed when the test ends.
_SOCKETS: list[WebsocketCommunicator] = []


def socket_open(application: Any, path: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    """A WebsocketCommunicator that is disconnected, as a browser's server would, when the
    test ends (see pytest_runtest_call)."""
    communicator = WebsocketCommunicator(application, path, headers=headers)
    _SOCKETS.append(communicator)
    return communicator


async def _sockets_close() -> None:
    """Tell each consumer still running that its socket went away, and let it finish. Left
    open, it would be cancelled together with everything else on the test's event loop as
    that closes; the Redis channel layer's receive, cancelled in that crowd, could go on
    reading (a CI run hung for the 120 s timeout in that teardown)."""
    while _SOCKETS:
        communicator = _SOCKETS.pop()
        if communicator.future.done():
            continue
        with contextlib.suppress(Exception):  # what the test checked is what counts
            await communicator.disconnect(timeout=5)


def _closing_sockets(test: Any) -> Any:
    @functools.wraps(test)
    async def closing(**kwargs: Any) -> Any:
        try:
            return await test(**kwargs)
        finally:
            await _sockets_close()

    return closing


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """An async test's open sockets are closed on its own event loop, before the loop ends."""
    test = getattr(item, "obj", None)
    if not inspect.iscoroutinefunction(test):
        return (yield)
    item.obj = _closing_sockets(test)  # type: ignore[attr-defined]
    try:
        return (yield)
    finally:
        item.obj = test  # type: ignore[attr-defined]
        _SOCKETS.clear()


async def ws_connect(user: User | None, *, origin: bytes = ORIGIN, language: str = "en") -> WebsocketCommunicator:
    """Open /ws/chat/ as `user` (None: no session) through the real ASGI application."""
    from webchat.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1"), (b"cookie", f"django_language={language}".encode())]
    if user is not None:
        cookie = await sync_to_async(session_cookie_for)(user)
        headers[2] = (b"cookie", f"sessionid={cookie}; django_language={language}".encode())
    return socket_open(application, "/ws/chat/", headers)


async def ws_frames_until(
    communicator: WebsocketCommunicator, types: set[str], timeout: float = 10
) -> list[dict[str, Any]]:
    """Collect frames until one whose type is in `types` (included)."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        frames.append(frame)
        if frame["type"] in types:
            return frames


async def ws_turn(communicator: WebsocketCommunicator, **send: Any) -> list[dict[str, Any]]:
    """Send one chat.send and return every frame up to chat.done or chat.error."""
    await communicator.send_json_to({"type": "chat.send", "conversation": None, **send})
    return await ws_frames_until(communicator, {"chat.done", "chat.error"})


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll an async predicate (for work that outlives the socket)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
