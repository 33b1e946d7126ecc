"""Observability through the app over HTTP (TestClient), on SQLite and PostgreSQL: /metrics
counts real launches and refusals, who may read it, the request's correlation id, /readyz."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import ActivityProgress, GradingProgress, LineItemSpec, Score
from adaptive_lti.db import grades_repo, migrate, operations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import PlatformRegistration
from adaptive_lti.settings import LogFormat, Settings
from adaptive_lti.web import observability
from adaptive_lti.web.app import create_app
from tests.lti.harness import NOW, LtiHarness, harness, isolated_database, tool_settings

TOKEN = "metrics-token-0123456789abcdef"


def scrape(
    client: TestClient, token: str = TOKEN
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url, metrics_token=TOKEN) as lti:
        yield lti


def test_a_launch_and_a_refusal_move_the_counters(h: LtiHarness) -> None:
    before = scrape(h.client)
    assert h.full_launch().status_code == 200
    forged = h.full_launch(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert forged.status_code == 401
    no_issuer = h.client.get("/lti/login", params={"login_hint": "3"})
    assert no_issuer.status_code == 400
    # A genuine token whose browser lost the state cookie (an iframe refusing it).
    state, nonce = h.start()
    h.client.cookies.clear()
    unbound = h.launch(h.platform.sign(h.platform.claims(nonce=nonce, now=h.clock.now)), state)
    assert "Open in a new window" in unbound.text
    # The platform answers the login with an OIDC error instead of a token.
    assert h.launch(None, None, error="login_required").status_code == 400
    after = scrape(h.client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("adaptive_lti_launches_total", outcome="accepted") == 1
    assert moved("adaptive_lti_launches_total", outcome="refused") == 1
    assert moved("adaptive_lti_launches_total", outcome="binding_needed") == 1
    assert moved("adaptive_lti_launches_total", outcome="platform_error") == 1
    assert moved("adaptive_lti_launch_refusals_total", step="launch", check="signature") == 1
    assert moved("adaptive_lti_launch_refusals_total", step="login", check="iss") == 1
    # Latency by route template, never a raw path.
    assert (
        moved(
            "adaptive_lti_http_request_duration_seconds_count",
            method="POST",
            route="/lti/launch",
            status="200",
        )
        == 1
    )
    assert (
        moved(
            "adaptive_lti_http_request_duration_seconds_count",
            method="POST",
            route="/lti/launch",
            status="401",
        )
        == 2  # the forged token and the unbound browser
    )
    # The refusals reach the table 'adaptive-lti status' reads, each with its message: the
    # first at once, the next one within the write interval (a second).
    recorded = recorded_refusals(h, {("launch", "signature"): 1, ("login", "iss"): 1})
    assert "signature" in recorded[("launch", "signature")].last_message


def recorded_refusals(
    h: LtiHarness, expected: dict[tuple[str, str], int]
) -> dict[tuple[str, str], operations_repo.RefusalSummary]:
    """The refusal counts in the database, once they are the ones expected (5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        with h.session_factory() as session:
            recorded = {
                (item.step, item.check): item
                for item in operations_repo.recent_refusals(session, NOW - timedelta(days=1))
            }
        counts = {key: item.count for key, item in recorded.items()}
        if counts == expected or time.monotonic() > deadline:
            assert counts == expected
            return recorded
        time.sleep(0.05)


@pytest.fixture
def batching_h(new_database_url: Callable[[str], str], backend: str) -> Iterator[LtiHarness]:
    """The app's own refusal batching (a timer writes the rest of a burst), on a database of its
    own: a connection per session, as in production, so the timer's write meets no test session."""
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with harness(
            make_session_factory(engine),
            url,
            isolate=False,
            refusal_write_interval=None,
            metrics_token=TOKEN,
        ) as lti:
            yield lti
    finally:
        engine.dispose()


def test_a_burst_of_refusals_is_written_in_few_statements(batching_h: LtiHarness) -> None:
    h = batching_h
    bind = h.session_factory.kw["bind"]
    engine: Engine = bind if isinstance(bind, Engine) else bind.engine
    writes: list[str] = []

    def watch(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LTI_REFUSAL_COUNT"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    started = time.monotonic()
    try:
        for _ in range(20):
            assert h.launch("not.a.token", "state", json=True).status_code == 401
        recorded_refusals(h, {("launch", "token_format"): 20})
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    elapsed = time.monotonic() - started
    # The first at once, then at most one write per second of the burst (plus the remainder):
    # 20 writes if every refusal were written on its own.
    assert 2 <= len(writes) <= 2 + math.ceil(elapsed) < 20


def test_paths_no_route_matches_share_one_series(h: LtiHarness) -> None:
    for number in range(3):
        assert h.client.get(f"/no-such-page-{number}").status_code == 404
        h.client.request(f"BREW{number}", "/healthz")
    samples = scrape(h.client)
    assert not [labels for (_name, labels) in samples if "no-such-page" in str(labels)]
    assert not [labels for (_name, labels) in samples if "BREW" in str(labels)]
    assert (
        value(
            samples,
            "adaptive_lti_http_request_duration_seconds_count",
            method="other",
            route="/healthz",
            status="405",
        )
        >= 3
    )
    assert (
        value(
            samples,
            "adaptive_lti_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="404",
        )
        >= 3
    )


def test_the_outbox_backlog_is_read_at_each_scrape(h: LtiHarness) -> None:
    assert value(scrape(h.client), "adaptive_lti_score_outbox_pending") == 0
    with transaction(h.session_factory) as session:
        registration_id = session.scalars(select(PlatformRegistration.id)).one()
        line_item = grades_repo.get_or_create_line_item(
            session,
            registration_id,
            LineItemSpec(
                label="Design",
                score_maximum=100,
                granted_scopes=("https://purl.imsglobal.org/spec/lti-ags/scope/score",),
                lineitem_url="https://platform.example/lineitems/1",
            ),
            NOW - timedelta(minutes=10),
        )
        for number in range(2):
            grades_repo.insert_score(
                session,
                registration_id,
                line_item.id,
                Score(
                    user_id="3",
                    activity_progress=ActivityProgress.in_progress,
                    grading_progress=GradingProgress.pending,
                    timestamp=NOW,
                    score_given=50,
                    score_maximum=100,
                ),
                f"test:{number}",
                NOW - timedelta(minutes=10 - number),
            )
    samples = scrape(h.client)
    assert value(samples, "adaptive_lti_score_outbox_pending") == 2
    assert value(samples, "adaptive_lti_score_outbox_failed") == 0
    assert value(samples, "adaptive_lti_score_outbox_oldest_pending_age_seconds") == 600
    assert "adaptive_lti_db_pool_checked_out" in {name for name, _labels in samples}


def test_metrics_need_the_token_when_one_is_set(h: LtiHarness) -> None:
    assert h.client.get("/metrics").status_code == 403
    wrong = h.client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 403
    assert "ADAPTIVE_LTI_METRICS_TOKEN" in wrong.text
    assert h.client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 403
    assert scrape(h.client)


def test_without_a_token_metrics_are_for_loopback_callers_only(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(session_factory, db_url) as lti:
        # TestClient's peer is "testclient", not a loopback address.
        refused = lti.client.get("/metrics", headers={"Accept": "application/json"})
        assert refused.status_code == 403
        assert "ADAPTIVE_LTI_METRICS_TOKEN" in refused.json()["hint"]
        local = TestClient(lti.app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000))
        response = local.get("/metrics")
        assert response.status_code == 200
        assert "adaptive_lti_launches_total" in response.text
        ipv6 = TestClient(lti.app, base_url="http://127.0.0.1", client=("::1", 50000))
        assert ipv6.get("/metrics").status_code == 200


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="ADAPTIVE_LTI_METRICS_TOKEN must be at least 16"):
        tool_settings("sqlite://", metrics_token="short")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-0123456789abcdef", True),
        ("3f1c9a2e-0b7d-4b8e-9a51-2c7d3e4f5a6b", True),
        ("x" * 129, False),
        ("two words", False),
        ('quote"inside', False),
        ("", False),
    ],
)
def test_the_request_id_is_kept_when_sane_and_echoed(h: LtiHarness, sent: str, kept: bool) -> None:
    response = h.client.get(
        "/no-such-page", headers={"X-Request-ID": sent, "Accept": "application/json"}
    )
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    assert 1 <= len(echoed) <= 128
    # The error's correlation id is the request's id: the page, the header and the logs agree.
    assert response.json()["correlation_id"] == echoed


def test_each_request_without_an_id_gets_its_own(h: LtiHarness) -> None:
    first = h.client.get("/healthz").headers["x-request-id"]
    second = h.client.get("/healthz").headers["x-request-id"]
    assert first != second
    assert len(first) == 32


def test_readyz_is_ready_at_head_and_healthz_touches_no_database(h: LtiHarness) -> None:
    assert h.client.get("/readyz").json() == {"status": "ready"}
    assert h.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_says_the_schema_is_behind(new_database_url, backend: str) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    migrate.upgrade(url, "0003_designs")
    app = create_app(tool_settings(url))
    # No lifespan (it would need the full schema for the signing key): the routes only.
    client = TestClient(app)
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert "0003_designs" in reason
    assert "adaptive-lti db upgrade" in reason
    assert client.get("/healthz").status_code == 200
    app.state.engine.dispose()


def test_readyz_says_the_database_cannot_be_reached(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = (
        f"sqlite:///{tmp_path}/missing-directory/tool.db"
        if backend == "sqlite"
        else "postgresql://postgres@127.0.0.1:1/none"
    )
    app = create_app(tool_settings(url))
    client = TestClient(app)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "cannot be reached" in response.json()["reason"]
    assert client.get("/healthz").status_code == 200
    # And /metrics still answers (the outbox part is left out while the database is away).
    local = TestClient(app, client=("127.0.0.1", 1234))
    assert local.get("/metrics").status_code == 200
    app.state.engine.dispose()


def test_a_fresh_database_is_not_ready(new_database_url, backend: str) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    engine = make_engine(url)
    app = create_app(tool_settings(url))
    app.state.session_factory = make_session_factory(engine)
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503
    assert "empty database" in response.json()["reason"]
    engine.dispose()
    app.state.engine.dispose()


def test_text_log_lines_carry_the_request_id(h: LtiHarness) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(observability.RequestIdFilter())
    handler.setFormatter(logging.Formatter(observability.TEXT_FORMAT))
    logger = logging.getLogger("adaptive_lti.web")
    logger.addHandler(handler)
    try:
        h.client.get("/no-such-page", headers={"X-Request-ID": "text-request-7"})
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert "WARNING adaptive_lti.web [text-request-7] GET /no-such-page -> 404" in first
    assert "[-] outside any request" in second


def test_logs_are_json_in_production_and_text_elsewhere() -> None:
    production = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="production", secret_key="s" * 40
    )
    assert production.effective_log_format is LogFormat.json
    assert tool_settings("sqlite://").effective_log_format is LogFormat.text
    assert tool_settings("sqlite://", log_format="json").effective_log_format is LogFormat.json
    config = observability.logging_config(tool_settings("sqlite://", log_format="json"))
    assert config["handlers"]["default"]["formatter"] == "json"
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["default"]


def test_refusals_not_yet_written_are_written_at_shutdown(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with isolated_database(session_factory, db_url) as (factory, url):
        with harness(factory, url, isolate=False, refusal_write_interval=None) as lti:
            for _ in range(5):
                assert lti.launch("not.a.token", "state").status_code == 401
        # The app has stopped (before the write interval was over): nothing is lost.
        with factory() as session:
            (summary,) = operations_repo.recent_refusals(session, NOW - timedelta(days=1))
        assert (summary.step, summary.check, summary.count) == ("launch", "token_format", 5)
