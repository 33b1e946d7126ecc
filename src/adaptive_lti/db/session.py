"""Engine and session factory. One session and one transaction per request or command.

Services and repositories flush but never commit: ``transaction()`` (CLI, workers) and the web
dependency (``web/deps.py``) commit on success and roll back on any error.

Connections: a request holds at most one pooled connection at a time. The few writes that must
outlive a refused launch (the platform key cache, an unknown deployment recorded) run in a
transaction of their own, after ``end_read_only_transaction`` has handed the request's connection
back (it had only read). The pool's size, overflow and timeout are settings
(``ADAPTIVE_LTI_DB_POOL_SIZE``, ``..._DB_MAX_OVERFLOW``, ``..._DB_POOL_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from adaptive_lti.core.errors import AdaptiveLtiError

log = logging.getLogger("adaptive_lti.db.session")

# Per process: 5 kept, up to 10 more under load; 4 processes then stay at 60 connections, below
# PostgreSQL's default max_connections of 100 with room for the CLI and workers.
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 10
DEFAULT_POOL_TIMEOUT_SECONDS = 10.0
_WROTE = "adaptive_lti.session_wrote"


class DatabaseBusyError(AdaptiveLtiError):
    """Every database connection of this process stayed in use for the pool timeout (503)."""

    status_code = 503

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(
            f"The tool is too busy to answer: no database connection came free within "
            f"{timeout_seconds:g} s. Nothing was saved.",
            hint="Try again in a moment. If it keeps happening, the administrator can give each "
            "process more connections (ADAPTIVE_LTI_DB_POOL_SIZE, ADAPTIVE_LTI_DB_MAX_OVERFLOW) "
            "within the database's max_connections, or add processes.",
        )


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


def make_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS,
    **kwargs: Any,
) -> Engine:
    url = normalise_database_url(url)
    in_memory = url in {"sqlite://", "sqlite:///:memory:"} or ":memory:" in url
    if not in_memory:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        gate = SqliteWriteGate()
        event.listen(engine, "begin", gate.begin)
        event.listen(engine.pool, "checkin", gate.on_checkin)
        event.listen(engine.pool, "invalidate", gate.on_invalidate)
        return engine
    # Pre-ping replaces pooled connections a database restart broke; connect_timeout makes a
    # database host that does not answer fail the request in seconds (a 503) instead of hanging.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def _note_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


def _note_flush(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


def _forget_writes(session: Session, *_: Any) -> None:
    session.info.pop(_WROTE, None)


# Every session notes whether its transaction wrote anything (ORM flush or DML statement).
event.listen(Session, "do_orm_execute", _note_write)
event.listen(Session, "after_flush", _note_flush)
event.listen(Session, "after_commit", _forget_writes)
event.listen(Session, "after_rollback", _forget_writes)


def end_read_only_transaction(session: Session) -> None:
    """Give the session's connection back to the pool when its transaction has only read.

    Called before work that needs a connection of its own (a write that must outlive the
    request's transaction) or that may be slow (a platform's key set fetch), so a request never
    holds two connections, nor one while it waits on the network. The session's next statement
    begins a new transaction. A session that wrote keeps its transaction (and its connection).
    """
    if not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        log.warning("a session that wrote keeps its connection during a second transaction")
        return
    session.commit()


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
