"""One pooled database connection per request: a launch and a journey request each check out
one connection (SQLAlchemy pool ``checkout`` events), never two at once, on SQLite and
PostgreSQL. A request that cannot get a connection in time gets the 503 page, not a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from sqlalchemy import Engine, event

from adaptive_lti.db import migrate
from adaptive_lti.db.session import (
    DatabaseBusyError,
    make_engine,
    make_session_factory,
)
from adaptive_lti.web.deps import DatabaseAdmission
from tests.design_samples import publish_example
from tests.e2e.conftest import forms_of
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import LTI


@dataclass
class Checkouts:
    """Counts the pool's checkouts and the most connections out at one moment."""

    total: int = 0
    out: int = 0
    most_out: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def watch(self, engine: Engine) -> None:
        event.listen(engine.pool, "checkout", self._checkout)
        event.listen(engine.pool, "checkin", self._checkin)

    def _checkout(self, *_: Any) -> None:
        with self._lock:
            self.total += 1
            self.out += 1
            self.most_out = max(self.most_out, self.out)

    def _checkin(self, *_: Any) -> None:
        with self._lock:
            self.out -= 1

    def reset(self) -> None:
        self.total = self.most_out = 0


@pytest.fixture
def counted(
    backend: str, new_database_url: Callable[[str], str]
) -> Iterator[tuple[LtiHarness, Checkouts]]:
    """The app on a fresh database whose pool is watched (no grade worker: only requests)."""
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    checkouts = Checkouts()
    factory = make_session_factory(engine)
    try:
        with harness(factory, url, isolate=False, grade_delivery_worker=False) as lti:
            publish_example(factory, now=lti.clock.now)
            checkouts.watch(engine)
            yield lti, checkouts
    finally:
        engine.dispose()


def with_design(claims: dict[str, Any]) -> None:
    claims[LTI + "custom"] = {"design": "intro-programming", "prior_programming": "none"}


def test_login_launch_and_journey_request_each_check_out_one_connection(
    counted: tuple[LtiHarness, Checkouts],
) -> None:
    h, checkouts = counted
    # The first launch also fetches the platform's keys and caches them.
    first = h.full_launch(mutate=with_design)
    assert first.status_code == 200, first.text
    assert checkouts.most_out == 1

    checkouts.reset()
    state, nonce = h.start()
    assert (checkouts.total, checkouts.most_out) == (1, 1), "login"

    checkouts.reset()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now, mutate=with_design)
    page = h.launch(h.platform.sign(claims), state)
    assert page.status_code == 200, page.text
    assert (checkouts.total, checkouts.most_out) == (1, 1), "launch"

    (intake,) = [form for form in forms_of(page) if form.action.endswith("/journey/intake")]
    checkouts.reset()
    answered = h.client.post(intake.action, data={**intake.fields, "attribute-goal": "interest"})
    assert answered.status_code == 200, answered.text
    assert (checkouts.total, checkouts.most_out) == (1, 1), "journey request"


def test_a_request_that_gets_no_connection_in_time_gets_the_503_page(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    factory = make_session_factory(engine)
    try:
        with harness(
            factory, url, isolate=False, grade_delivery_worker=False, db_pool_timeout_seconds=0.2
        ) as h:
            held = engine.connect()  # someone else holds the only connection
            try:
                refused = h.login()
                as_json = h.client.get(
                    "/lti/login",
                    params=h.login_params(),
                    headers={"Accept": "application/json"},
                    follow_redirects=False,
                )
            finally:
                held.close()
            assert refused.status_code == 503, refused.text
            assert "too busy" in refused.text and "ADAPTIVE_LTI_DB_POOL_SIZE" in refused.text
            assert refused.headers["retry-after"]
            assert as_json.status_code == 503
            assert as_json.json()["error"] == "The tool is busy"
            # Once the connection is free again, the login works.
            assert h.login().status_code == 302
    finally:
        engine.dispose()


def test_requests_past_the_pool_wait_in_the_event_loop_then_get_the_busy_error() -> None:
    """The admission in front of the sessions: the second request waits (no thread), then gets
    the 503 error once the pool timeout has passed, and gets in when a slot comes free."""
    admission = DatabaseAdmission(1, timeout_seconds=0.2)

    async def scenario() -> tuple[float, bool]:
        async with admission.admitted():
            started = anyio.current_time()
            with pytest.raises(DatabaseBusyError, match="no database connection came free"):
                async with admission.admitted():
                    pass
            waited = anyio.current_time() - started
        async with admission.admitted():
            return waited, True

    waited, admitted_later = anyio.run(scenario)
    assert 0.15 < waited < 2.0 and admitted_later
