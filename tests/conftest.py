"""Shared fixtures: a real database on SQLite and on PostgreSQL, built by the migrations.

Database, service and web tests take the ``db_url`` / ``engine`` / ``session`` fixtures and run
once per backend. PostgreSQL comes from ``ADAPTIVE_LTI_TEST_POSTGRES_URL`` (default: the local
server, database ``test``); each test run creates its own throw-away database beside it, so runs
in parallel never meet. Without PostgreSQL the PostgreSQL cases are skipped, except under CI
(``CI=true``), where an unreachable server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, normalise_database_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]


def _postgres_admin_url() -> str:
    return os.environ.get("ADAPTIVE_LTI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class ThrowawayPostgres:
    """Creates uniquely named databases on the PostgreSQL server and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(
            normalise_database_url(admin_url), isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self.names: list[str] = []

    def reachable(self) -> str | None:
        try:
            with self.admin.connect() as connection:
                connection.execute(text("select 1"))
        except Exception as error:  # any driver error means "not reachable"
            return str(error).splitlines()[0]
        return None

    def create(self) -> str:
        name = f"adaptive_lti_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres | None]:
    server = ThrowawayPostgres(_postgres_admin_url())
    problem = server.reachable()
    if problem is not None:
        if _under_ci():
            pytest.fail(f"PostgreSQL is unreachable under CI ({_postgres_admin_url()}): {problem}")
        yield None
        return
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def new_database_url(
    postgres_server: ThrowawayPostgres | None, tmp_path_factory: pytest.TempPathFactory
):  # type: ignore[no-untyped-def]
    """A factory: ``new_database_url(backend)`` gives the URL of a new, empty database."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / "adaptive-lti.db"
            return f"sqlite:///{path}"
        if postgres_server is None:
            pytest.skip("PostgreSQL is not reachable (set ADAPTIVE_LTI_TEST_POSTGRES_URL)")
        return postgres_server.create()

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, new_database_url) -> str:  # type: ignore[no-untyped-def]
    """A database migrated to head, shared by the tests of one backend."""
    url: str = new_database_url(request.param)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        if transaction.is_active:
            transaction.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions on the test's connection: their commits become savepoints, undone afterwards."""
    return sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of a backend, for tests that build their own database."""
    name: str = request.param
    return name


# Under CI a skipped test is a failed run: a PostgreSQL or browser test that quietly skips would
# let a green run hide a missing service or a missing install step.
_skipped_under_ci: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and _under_ci():
        _skipped_under_ci.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_under_ci and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_under_ci:
        terminalreporter.section("skipped under CI (each one fails the run)", red=True)
        for nodeid in _skipped_under_ci:
            terminalreporter.line(nodeid)
