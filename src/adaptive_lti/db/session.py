"""Engine and session factory. One session and one transaction per request or command.

Services and repositories flush but never commit: ``transaction()`` (CLI, workers) and the web
dependency (``web/deps.py``) commit on success and roll back on any error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()
    # Let SQLAlchemy, not pysqlite, say when a transaction begins: pysqlite opens one lazily at
    # the first INSERT/UPDATE/DELETE, so a SAVEPOINT sent earlier started a transaction of its
    # own and its RELEASE committed for good, even if the request later rolled back.
    dbapi_connection.isolation_level = None


SQLITE_BUSY_TIMEOUT_SECONDS = 5.0
_GATE_HELD = "adaptive_lti.sqlite_gate_held"


class SqliteWriteGate:
    """Lets one transaction at a time into an SQLite engine from this process.

    SQLite has one writer. Without the gate, waiting transactions poll in SQLite's busy handler,
    whose sleeps grow to 100 ms: at 32 concurrent requests that made a tail of seconds and, past
    busy_timeout, "database is locked" errors. Here waiters queue on a lock and go in the moment
    the holder's connection returns to the pool (after its COMMIT or ROLLBACK). Other processes
    on the same file still meet SQLite's own locking. A gate not obtained in time is skipped, so
    a thread that holds two connections at once waits for busy_timeout, never for ever.
    """

    def __init__(self, timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout

    def begin(self, connection: Any) -> None:
        if not connection.info.get(_GATE_HELD):
            connection.info[_GATE_HELD] = self._lock.acquire(timeout=self._timeout)
        try:
            # IMMEDIATE takes the write lock up front: a deferred transaction that read first
            # and wrote later would fail at once under WAL whenever another writer committed
            # in between (SQLITE_BUSY_SNAPSHOT) instead of waiting its turn.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.release(connection.info)
            raise

    def release(self, info: dict[Any, Any]) -> None:
        if info.pop(_GATE_HELD, False):
            self._lock.release()

    def on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        self.release(record.info)

    def on_invalidate(self, _dbapi_connection: Any, record: Any, _exception: Any) -> None:
        self.release(record.info)


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        gate = SqliteWriteGate()
        event.listen(engine, "begin", gate.begin)
        event.listen(engine.pool, "checkin", gate.on_checkin)
        event.listen(engine.pool, "invalidate", gate.on_invalidate)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # Pre-ping replaces pooled connections a database restart broke; connect_timeout makes a
    # database host that does not answer fail the request in seconds (a 503) instead of hanging.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed if the block succeeds and rolled back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
