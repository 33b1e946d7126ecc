"""The deployed shape, end to end: Debian's nginx with ``deploy/nginx.conf`` (TLS ending there,
forwarded headers) in front of two ``adaptive-lti serve`` processes on one PostgreSQL database.

A launch's login goes through one process and its launch through the other; learners' answers
are balanced over both; both run the score-delivery worker, and the platform (the demo
platform, reached through nginx like any platform) receives each score exactly once: nginx's
access log counts the score posts.
"""

from __future__ import annotations

import collections
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from adaptive_lti.db import migrate
from adaptive_lti.db.session import normalise_database_url
from tests.e2e.conftest import DemoPlatformClient, RunningServer, path_of, recorded_launches
from tests.e2e.journey_walker import JourneyWalker, Persona, example_design
from tests.e2e.serve_process import (
    PIN_HEADER,
    RunningNginx,
    free_port,
    make_self_signed_certificate,
    nginx_binary,
    publish_demo_course,
    start_nginx,
    start_serve,
    trusting,
)

UPSTREAM = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d+) .*upstream=(?P<up>\S+)'
)
SCORES_PATH = re.compile(r"^/demo-platform/services/.*/lineitem/scores$")
LINE_ITEMS_PATH = re.compile(r"^/demo-platform/services/[^/]+/lineitems$")


@dataclass
class Deployment:
    nginx: RunningNginx
    tools: list[RunningServer]
    database_url: str
    cert: Path

    def upstream_of(self, server: RunningServer) -> str:
        return server.url.removeprefix("http://")

    def requests(self) -> list[dict[str, str]]:
        """nginx's access log: method, path (without query), status, upstream of each request."""
        found = []
        for line in self.nginx.access_lines():
            match = UPSTREAM.search(line)
            if match:
                entry = match.groupdict()
                entry["path"] = entry["path"].split("?", 1)[0]
                found.append(entry)
        return found


@pytest.fixture(scope="module")
def deployment(
    new_database_url: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    binary = nginx_binary()
    root = tmp_path_factory.mktemp("nginx-deployment")
    cert, key = make_self_signed_certificate(root)
    database_url = new_database_url("postgresql")  # type: ignore[operator]
    migrate.upgrade(database_url)
    # The public origin both processes must know: nginx's port, chosen before they start.
    https_port = free_port()
    public_url = f"https://127.0.0.1:{https_port}"
    extra = {
        # The tool calls the platform (JWKS, token, scores) through nginx: trust the cert.
        "SSL_CERT_FILE": str(cert),
        "REQUESTS_CA_BUNDLE": str(cert),
        # Both workers poll often, so they meet on the same due scores.
        "ADAPTIVE_LTI_GRADE_DELIVERY_INTERVAL_SECONDS": "0.1",
    }
    tools: list[RunningServer] = []
    nginx: RunningNginx | None = None
    try:
        for number in (1, 2):
            tools.append(
                start_serve(
                    database_url,
                    root / "data",
                    base_url=public_url,
                    name=f"tool-{number}",
                    # The second is itself two uvicorn workers sharing one socket.
                    workers=number,
                    migrate=False,
                    extra_env=extra,
                )
            )
        publish_demo_course(tools[0])
        upstreams = [tool.url.removeprefix("http://") for tool in tools]
        nginx = start_nginx(binary, root / "nginx", upstreams, cert, key, https_port)
        yield Deployment(nginx, tools, database_url, cert)
    finally:
        if nginx is not None:
            nginx.stop()
        for tool in tools:
            tool.stop()


@pytest.fixture
def client(deployment: Deployment) -> Iterator[DemoPlatformClient]:
    front = RunningServer(
        url=deployment.nginx.url,
        base_url=deployment.nginx.url,
        database_url=deployment.database_url,
        data_dir=deployment.tools[0].data_dir,
        log_path=deployment.nginx.access_log,
        process=deployment.nginx.process,
    )
    client = DemoPlatformClient(front)
    client.http.close()
    client.http = httpx.Client(timeout=15, follow_redirects=False, verify=trusting(deployment.cert))
    yield client
    client.close()


def test_login_through_one_process_and_the_launch_through_the_other(
    deployment: Deployment, client: DemoPlatformClient
) -> None:
    first, second = deployment.tools
    client.http.headers[PIN_HEADER] = "1"
    login_form = client.pick("chen")
    answer = client.authorize(client.login(login_form))
    client.http.headers[PIN_HEADER] = "2"
    page = client.launch(answer)
    del client.http.headers[PIN_HEADER]
    assert page.status_code == 200, page.text
    assert recorded_launches(first)[-1].subject == "5"
    served = {(r["method"], r["path"]): r["up"] for r in deployment.requests()}
    assert served[("POST", path_of(login_form.action))] == deployment.upstream_of(first)
    assert served[("POST", path_of(answer.action))] == deployment.upstream_of(second)
    # X-Forwarded-Proto and -Host reached the tool: the links it builds are the public https ones.
    assert f'href="{deployment.nginx.url}/static/' in page.text


def test_a_client_cannot_forge_its_address_and_large_bodies_stop_at_nginx(
    deployment: Deployment, client: DemoPlatformClient
) -> None:
    response = client.http.get(
        deployment.nginx.url + "/healthz", headers={"X-Forwarded-For": "203.0.113.77"}
    )
    assert response.status_code == 200
    time.sleep(0.2)
    assert all("203.0.113.77" not in tool.log() for tool in deployment.tools)
    assert any('127.0.0.1:0 - "GET /healthz' in tool.log() for tool in deployment.tools), (
        "uvicorn applied X-Forwarded-For (a client port of 0)"
    )
    too_big = client.http.post(
        deployment.nginx.url + "/lti/login", content=b"x" * (3 * 1024 * 1024)
    )
    assert too_big.status_code == 413
    plain = httpx.get(deployment.nginx.http_url + "/lti/login")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")


def _score_rows(database_url: str) -> list[tuple[str, str, int]]:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT user_sub, status, attempts FROM lti_score_outbox ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [(str(row[0]), str(row[1]), int(row[2])) for row in rows]


def test_answers_spread_over_both_and_each_score_reaches_the_platform_once(
    deployment: Deployment, client: DemoPlatformClient
) -> None:
    personas = [
        Persona(
            "ana", "3", {"goal": "interest"}, {"diagnostic": [1], "project": [4]}, "elective-games"
        ),
        Persona(
            "ben", "4", {"goal": "vocational"}, {"diagnostic": [6], "project": [5]}, "elective-data"
        ),
    ]
    walker = JourneyWalker(client, example_design())
    for persona in personas:
        final = walker.walk(persona, client.launch_as(persona.key))
        assert 'data-kind="completed"' in final.text
    answers = [r for r in deployment.requests() if r["path"].startswith("/journey/")]
    assert {r["up"] for r in answers} == {deployment.upstream_of(t) for t in deployment.tools}
    assert all(r["status"] in {"200", "303"} for r in answers), answers

    # Then a burst: ten new line items with a score for both learners, queued in one
    # transaction, so both processes' workers find twenty due scores at the same moment.
    burst = queue_burst(deployment.database_url, learners=["3", "4"], line_items=10)

    deadline = time.monotonic() + 120
    while True:
        rows = _score_rows(deployment.database_url)
        if rows and all(status != "pending" for _, status, _ in rows):
            break
        assert time.monotonic() < deadline, f"scores still pending: {rows}"
        time.sleep(0.2)
    delivered = [row for row in rows if row[1] == "delivered"]
    assert len(delivered) >= 2 + burst
    assert {user for user, _, _ in delivered} == {"3", "4"}
    assert all(status in {"delivered", "superseded"} for _, status, _ in rows), rows
    assert all(attempts == 1 for _, _, attempts in delivered), rows
    requests = deployment.requests()
    posts = [r for r in requests if r["method"] == "POST" and SCORES_PATH.match(r["path"])]
    assert len(posts) == len(delivered), (posts, rows)
    assert all(r["status"].startswith("2") for r in posts), posts
    created = [r for r in requests if r["method"] == "POST" and LINE_ITEMS_PATH.match(r["path"])]
    assert len(created) == 10, created


def queue_burst(database_url: str, *, learners: list[str], line_items: int) -> int:
    """Queue a score per learner on each of ``line_items`` new line items (created on the
    platform by the first delivery), in the platform's container that the launches gave."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from adaptive_lti.core.grading import ActivityProgress, GradingProgress, LineItemSpec, Score
    from adaptive_lti.db.session import make_engine, make_session_factory, transaction
    from adaptive_lti.db.tables import LineItem
    from adaptive_lti.services.grades import queue_score

    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        with transaction(make_session_factory(engine)) as session:
            course_item = session.scalars(select(LineItem).order_by(LineItem.id)).first()
            assert course_item is not None and course_item.lineitems_url
            for number in range(line_items):
                spec = LineItemSpec(
                    label=f"Burst {number}",
                    score_maximum=10,
                    granted_scopes=tuple(course_item.granted_scopes),
                    lineitems_url=course_item.lineitems_url,
                    # Columns of their own, tied to no resource link (not the activity's).
                    resource_id=f"burst-{number}",
                )
                for learner in learners:
                    queue_score(
                        session,
                        registration_id=course_item.registration_id,
                        line_item=spec,
                        now=now,
                        score=Score(
                            user_id=learner,
                            activity_progress=ActivityProgress.completed,
                            grading_progress=GradingProgress.fully_graded,
                            timestamp=now,
                            score_given=float(number),
                            score_maximum=10,
                        ),
                    )
    finally:
        engine.dispose()
    return line_items * len(learners)


# Last in the module: it stops the first tool process for good.
def test_a_process_stopped_with_sigterm_behind_nginx_drops_no_request(
    deployment: Deployment,
) -> None:
    first = deployment.tools[0]
    statuses: collections.Counter[int] = collections.Counter()
    errors: list[Exception] = []
    stop = threading.Event()

    def browse() -> None:
        with httpx.Client(verify=trusting(deployment.cert), timeout=15) as http:
            while not stop.is_set():
                try:
                    statuses[http.get(deployment.nginx.url + "/demo-platform/").status_code] += 1
                except httpx.HTTPError as error:
                    errors.append(error)

    browsers = [threading.Thread(target=browse) for _ in range(4)]
    for browser in browsers:
        browser.start()
    try:
        time.sleep(1)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(15) == 0
        time.sleep(1)
    finally:
        stop.set()
        for browser in browsers:
            browser.join(30)
    assert not errors, errors[:3]
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 20
