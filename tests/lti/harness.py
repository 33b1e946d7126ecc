"""A tool app driven through FastAPI's TestClient by the scripted platform: login, then launch."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.cli.app import build_app
from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import Context, Deployment, Launch, LoginState, ResourceLink, User
from adaptive_lti.settings import Settings, UnknownDeploymentPolicy
from adaptive_lti.web.observability import RefusalTally
from tests.database_checksum import table_checksums
from tests.lti.scripted_platform import INSTRUCTOR, LAUNCH_URL, LEARNER, TOOL_BASE, ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = "test-secret-key-that-is-long-enough-0123456789"


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def tool_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "base_url": TOOL_BASE,
        "environment": "test",
        "secret_key": SECRET,
        "unknown_deployment_policy": UnknownDeploymentPolicy.record_inactive,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def row_counts(session: Session) -> dict[str, int]:
    return {
        table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
        for table in (User, Context, ResourceLink, Launch, LoginState, Deployment)
    }


@dataclass
class LtiHarness:
    app: FastAPI
    client: TestClient
    platform: ScriptedPlatform
    clock: Clock
    session_factory: sessionmaker[Session]
    logins: list[tuple[str, str]] = field(default_factory=list)
    # ``checksums()`` at a moment a test chose (``mark``): what "nothing was written" compares.
    marked: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        with self.session_factory() as session:
            return row_counts(session)

    def checksums(self) -> dict[str, str]:
        """Every table's contents, hashed (``tests.database_checksum``): what a refusal test
        compares before and after to show that nothing was written."""
        with self.session_factory() as session:
            return table_checksums(session)

    def mark(self) -> None:
        self.marked = self.checksums()

    def unchanged_since_mark(self) -> bool:
        return bool(self.marked) and self.checksums() == self.marked

    def login_params(self, **overrides: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "iss": self.platform.issuer,
            "login_hint": "3",
            "target_link_uri": LAUNCH_URL,
            "lti_message_hint": "1",
            "lti_deployment_id": self.platform.deployment_id,
            "client_id": self.platform.client_id,
        }
        params.update(overrides)
        return {key: value for key, value in params.items() if value is not None}

    def login(self, method: str = "GET", **overrides: str | None) -> httpx.Response:
        params = self.login_params(**overrides)
        if method == "GET":
            return self.client.get("/lti/login", params=params, follow_redirects=False)
        return self.client.post("/lti/login", data=params, follow_redirects=False)

    def start(self, **overrides: str | None) -> tuple[str, str]:
        """Log in and return (state, nonce) from the redirect to the platform."""
        response = self.login(**overrides)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        state, nonce = query["state"][0], query["nonce"][0]
        self.logins.append((state, nonce))
        return state, nonce

    def launch(
        self, id_token: str | None, state: str | None, *, json: bool = False, **extra: str
    ) -> httpx.Response:
        data = {key: value for key, value in (("id_token", id_token), ("state", state)) if value}
        data.update(extra)
        headers = {"Accept": "application/json"} if json else {}
        return self.client.post("/lti/launch", data=data, headers=headers, follow_redirects=False)

    def full_launch(
        self,
        *,
        role: str = LEARNER,
        mutate: Callable[[dict[str, Any]], None] | None = None,
        subject: str = "3",
        json: bool = False,
        **sign_options: Any,
    ) -> httpx.Response:
        state, nonce = self.start()
        claims = self.platform.claims(
            nonce=nonce, now=self.clock.now, role=role, subject=subject, mutate=mutate
        )
        return self.launch(self.platform.sign(claims, **sign_options), state, json=json)


_SQLITE_TEMPLATE: list[Path] = []


def fresh_sqlite_url() -> str:
    """A new SQLite database at head: a copy of one migrated once per test run."""
    if not _SQLITE_TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="adaptive-lti-template-")) / "template.db"
        migrate.upgrade(f"sqlite:///{template}")
        _SQLITE_TEMPLATE.append(template)
    target = Path(tempfile.mkdtemp(prefix="adaptive-lti-test-")) / "tool.db"
    shutil.copyfile(_SQLITE_TEMPLATE[0], target)
    return f"sqlite:///{target}"


@contextmanager
def isolated_database(
    session_factory: sessionmaker[Session], db_url: str
) -> Iterator[tuple[sessionmaker[Session], str]]:
    """Sessions whose commits vanish after the test.

    On PostgreSQL the test's rolled-back connection does it. On SQLite it cannot: pysqlite
    starts no transaction before the first write, so the outermost SAVEPOINT's RELEASE
    commits. SQLite tests therefore get a fresh database file each."""
    if not db_url.startswith("sqlite"):
        yield session_factory, db_url
        return
    url = fresh_sqlite_url()
    engine = make_engine(url)
    try:
        yield make_session_factory(engine), url
    finally:
        engine.dispose()
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


@contextmanager
def harness(
    session_factory: sessionmaker[Session],
    db_url: str,
    *,
    platform: ScriptedPlatform | None = None,
    register: bool = True,
    static: bool = False,
    isolate: bool = True,
    refusal_write_interval: float | None = 0.0,
    **settings_overrides: Any,
) -> Iterator[LtiHarness]:
    """An app whose sessions come from ``session_factory`` (the test's rolled-back connection,
    or a fresh database's factory) with the scripted platform registered."""
    if isolate:
        with (
            isolated_database(session_factory, db_url) as (factory, url),
            harness(
                factory,
                url,
                platform=platform,
                register=register,
                static=static,
                isolate=False,
                refusal_write_interval=refusal_write_interval,
                **settings_overrides,
            ) as isolated,
        ):
            yield isolated
        return
    platform = platform or ScriptedPlatform()
    clock = Clock()
    app = build_app(tool_settings(db_url, **settings_overrides))
    app.state.session_factory = session_factory
    if refusal_write_interval is not None:
        # Refusal counts written with each refusal, not by a timer a second later: the test's
        # sessions share one connection, and a timer's write in the middle of a test's own
        # session would interleave their savepoints (which no real request, with a connection
        # of its own, can). tests/web/test_observability.py tests the batching itself.
        app.state.refusal_tally = RefusalTally(interval_seconds=refusal_write_interval)
    app.state.http_transport = platform.transport()
    app.state.clock = clock
    if register:
        with transaction(session_factory) as session:
            platform.register(session, clock.now, static=static)
    try:
        with TestClient(app, base_url=TOOL_BASE) as client:
            yield LtiHarness(app, client, platform, clock, session_factory)
    finally:
        app.state.engine.dispose()


def token_of(page: str) -> str:
    """The tool-session token a page of the tool carries in its forms."""
    found = re.search(r'name="tool_session" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def instructor_token(h: LtiHarness) -> str:
    """The tool-session token of an instructor's launch (user 4)."""
    return token_of(h.full_launch(role=INSTRUCTOR, subject="4").text)
