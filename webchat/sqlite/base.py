"""Django's SQLite backend, with a process's writers taking turns on a lock.

SQLite lets one writer at a time. When a second thread of the same process wants to write,
SQLite's busy handler makes it sleep and retry, in steps that grow to 100 ms: with forty
students pressing Send at once, replies waited hundreds of milliseconds for nothing
(bench/relay.py). Here the server's threads queue on a lock instead, and each wakes the
moment the writer before it commits.

- A transaction (BEGIN IMMEDIATE, as settings.py asks) takes the lock when it begins and
  lets go when it commits or rolls back, or when its connection closes.
- A write outside a transaction takes it for that one statement; reads never take it (WAL
  lets them run beside the writer).
- Other processes (the Celery worker) still meet SQLite's own busy timeout.
- Should the lock ever be held too long (a thread that never finished its transaction),
  a writer waits LOCK_WAIT seconds and then goes on to SQLite's busy handling, logged.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db.backends.sqlite3 import base

logger = logging.getLogger(__name__)

_writer = threading.RLock()  # reentrant: BEGIN itself runs through the cursor below
LOCK_WAIT = 10.0
_READS = ("SELECT", "PRAGMA", "EXPLAIN", "WITH")


def _take() -> bool:
    if _writer.acquire(timeout=LOCK_WAIT):
        return True
    logger.warning("the SQLite writer lock was held over %.0f s; going on to SQLite's busy timeout", LOCK_WAIT)
    return False


class _Cursor(base.SQLiteCursorWrapper):
    def _writes(self, query: str) -> bool:
        return not self.connection.in_transaction and not query.lstrip()[:7].upper().startswith(_READS)

    def execute(self, query: str, params: Any = None) -> Any:
        if not self._writes(query):
            return super().execute(query, params)
        taken = _take()
        try:
            return super().execute(query, params)
        finally:
            if taken:
                _writer.release()

    def executemany(self, query: str, param_list: Any) -> Any:
        if not self._writes(query):
            return super().executemany(query, param_list)
        taken = _take()
        try:
            return super().executemany(query, param_list)
        finally:
            if taken:
                _writer.release()


def _lower(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_writer = False

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """SQLite's own lower() and upper() change ASCII letters only: "Élodie" and
        "élodie" were two usernames here and one on PostgreSQL. Python's know every script's
        case; lower() is casefold(), the full folding the code comparing usernames in Python
        uses (apps.accounts.selectors.username_fold: "ΟΔΟΣ" and "οδος" are one)."""
        connection = super().get_new_connection(conn_params)
        connection.create_function("lower", 1, _lower, deterministic=True)
        connection.create_function("upper", 1, _upper, deterministic=True)
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=_Cursor)

    def _start_transaction_under_autocommit(self) -> None:
        self._holds_writer = _take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._writer_release()
            raise

    def _writer_release(self) -> None:
        if self._holds_writer:
            self._holds_writer = False
            _writer.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._writer_release()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._writer_release()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._writer_release()
