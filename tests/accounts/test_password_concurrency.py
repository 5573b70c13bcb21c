"""A class logging in at once: at most PASSWORD_HASHING_CONCURRENCY password hashes run at
the same time, so the rest of the server keeps a core (thirty logins hashing together
stalled every running chat for seconds)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password

from webchat import passwords

HASHER = "webchat.passwords.PBKDF2OneCoreAtATimeHasher"


@pytest.fixture
def one_at_a_time(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The site's hasher with one slot, and a record of how many hashes ran at once."""
    settings.PASSWORD_HASHERS = [HASHER]
    settings.PASSWORD_HASHING_CONCURRENCY = 1
    monkeypatch.setattr(passwords, "_slots", None)
    running, most = [0], [0]
    lock = threading.Lock()
    real = PBKDF2PasswordHasher.encode

    def counted(self: Any, password: str, salt: str, iterations: int | None = None) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        try:
            return real(self, password, salt, 1000)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(PBKDF2PasswordHasher, "encode", counted)
    return most


def test_logins_at_once_hash_one_at_a_time(one_at_a_time: list[int]) -> None:
    stored = make_password("correct-horse-battery-42")
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(check_password("correct-horse-battery-42", stored)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 6
    assert one_at_a_time[0] == 1


def test_a_password_hashed_by_djangos_own_hasher_still_checks(settings: Any) -> None:
    """The hashes are Django's pbkdf2_sha256: passwords set before keep working."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    stored = make_password("correct-horse-battery-42", hasher="default")
    settings.PASSWORD_HASHERS = [HASHER, "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher"]
    assert stored.startswith("pbkdf2_sha256$")
    assert check_password("correct-horse-battery-42", stored)
    assert not check_password("wrong", stored)


def test_a_hash_waits_for_its_turn_no_longer_than_the_limit(one_at_a_time: list[int], settings: Any) -> None:
    """A flood of made-up logins filled the queue: a real one waited 13 s. Past the wait
    it runs anyway."""
    settings.PASSWORD_HASHING_WAIT = 0.2
    slots = passwords.hashing_slots()
    slots.acquire()  # the one slot, held by a flood
    try:
        started = time.perf_counter()
        stored = make_password("correct-horse-battery-42")
        assert check_password("correct-horse-battery-42", stored)
        assert time.perf_counter() - started < 2.0
    finally:
        slots.release()
