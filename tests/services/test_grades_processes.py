"""Two delivery processes, one platform: every score is posted exactly once.

The Moodle-shaped fake platform runs as a real local HTTP server in the test process; two
forked worker processes deliver the same outbox through it, each with its own database
connections and HTTP client (as two app servers or two ``grades deliver`` processes would).
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from adaptive_lti.core.grading import RetryPolicy
from adaptive_lti.db import grades_repo, migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.lti.ags import AgsClient
from adaptive_lti.lti.service_http import new_http_client
from adaptive_lti.lti.service_token import ServiceTokenProvider
from adaptive_lti.services import grades
from tests.lti.fake_platform import (
    FakePlatform,
    add_fake_registration,
    new_platform,
    queue_activity_score,
    tool_signing_key,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forks worker processes")

ORIGINAL_URL_HEADER = "X-Test-Original-Url"


def serve(platform: FakePlatform) -> ThreadingHTTPServer:
    """The fake platform behind a real HTTP server on 127.0.0.1 (a free port)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {
                k: v for k, v in self.headers.items() if k.lower() != ORIGINAL_URL_HEADER.lower()
            }
            request = httpx.Request(
                self.command, self.headers[ORIGINAL_URL_HEADER], headers=headers, content=body
            )
            try:
                response = platform.handle(request)
            except httpx.TransportError:
                # A platform that drops the connection without answering.
                self.close_connection = True
                return
            content = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ToLocalServer(httpx.BaseTransport):
    """Sends every request to the local server, carrying the platform URL it was meant for."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        local = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port),
            headers={**request.headers, ORIGINAL_URL_HEADER: str(request.url)},
            content=request.read(),
        )
        return self._inner.handle_request(local)

    def close(self) -> None:
        self._inner.close()


def deliver_until_done(database_url: str, port: int) -> None:
    """One worker process: deliver until nothing is due."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    http = new_http_client(ToLocalServer(port))
    tokens = ServiceTokenProvider(factory, http, signing_key=tool_signing_key)
    client = AgsClient(tokens, http)
    immediate_retry = RetryPolicy(base_seconds=0, floor_seconds=0, max_attempts=50)
    try:
        for _ in range(500):
            report = grades.deliver_due_scores(
                factory, client, datetime.now(UTC), policy=immediate_retry, limit=3
            )
            if report.attempted == 0:
                return
        raise SystemExit("still delivering after 500 passes")
    finally:
        http.close()
        engine.dispose()


@pytest.fixture
def database_url(new_database_url, backend: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    url: str = new_database_url(backend)
    migrate.upgrade(url)
    yield url


def test_two_worker_processes_post_every_score_exactly_once(database_url: str) -> None:
    platform = new_platform(score_delay=0.002)
    platform.score_faults.extend(["500", "timeout", "503", "expire"] * 2)
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        registration_id = add_fake_registration(session, now)
        for n in range(40):
            queue_activity_score(
                session, registration_id, user_id=str(200 + n), score_given=n % 10, now=now
            )
    engine.dispose()  # nothing open across the fork
    server = serve(platform)
    try:
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=deliver_until_done, args=(database_url, server.server_port))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert [worker.exitcode for worker in workers] == [0, 0]
    finally:
        server.shutdown()
        server.server_close()
    received = [score.payload["userId"] for score in platform.received_scores]
    assert sorted(received) == sorted(str(200 + n) for n in range(40))
    assert len(set(received)) == len(received) == 40
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            assert grades_repo.outbox_counts(session) == {
                "pending": 0,
                "delivered": 40,
                "failed": 0,
                "superseded": 0,
            }
    finally:
        engine.dispose()
