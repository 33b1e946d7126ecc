"""Faults a deployment meets: the database restarting under load, and the process being told to
stop (SIGTERM, as Kubernetes and systemd do) while it serves a request.

PostgreSQL here is a private server started for this module (initdb into a temporary
directory, a free port): stopping it disturbs nobody. The shared server is never touched.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from adaptive_lti.db import migrate
from adaptive_lti.db.session import normalise_database_url
from adaptive_lti.db.tables import Launch
from tests.e2e.conftest import DemoPlatformClient, RunningServer, forms_of
from tests.e2e.serve_process import (
    PrivatePostgres,
    free_port,
    publish_demo_course,
    remove_private_postgres,
    serve_environment,
    start_private_postgres,
    start_serve,
)

# A request that meets the database down must be answered at once, not hang.
FAIL_FAST_SECONDS = 3.0
SHUTDOWN_BOUND_SECONDS = 15.0


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = start_private_postgres()
    yield server
    remove_private_postgres(server)


def _serve_on(database_url: str, data_dir: Path, **options: object) -> RunningServer:
    migrate.upgrade(database_url)
    port = free_port()
    server = start_serve(
        database_url,
        data_dir,
        base_url=f"http://127.0.0.1:{port}",
        port=port,
        name="tool",
        migrate=False,
        **options,  # type: ignore[arg-type]
    )
    publish_demo_course(server)
    return server


def _launch_rows(database_url: str) -> int:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Launch)).scalar_one())
    finally:
        engine.dispose()


@dataclass
class Load:
    """Launches in a loop from one thread; every answer of the tool is kept."""

    server: RunningServer
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[str, int, float, str]] = field(default_factory=list)
    launched: int = 0

    def run(self) -> None:
        client = DemoPlatformClient(self.server)
        client.http.timeout = httpx.Timeout(10)
        try:
            while not self.stop.is_set():
                self._one_launch(client)
        finally:
            client.close()

    def _send(
        self, client: DemoPlatformClient, method: str, url: str, data: dict[str, str]
    ) -> httpx.Response:
        started = time.monotonic()
        response = client.http.request(method, url, data=data)
        self.answers.append(
            (
                f"{method} {httpx.URL(url).path}",
                response.status_code,
                time.monotonic() - started,
                response.text,
            )
        )
        return response

    def _one_launch(self, client: DemoPlatformClient) -> None:
        try:
            login_form = client.pick("ana")
        except (AssertionError, httpx.TransportError):
            time.sleep(0.1)
            return
        login = self._send(client, "POST", login_form.action, login_form.fields)
        if not login.is_redirect:
            return
        authorize = client.http.get(login.headers["location"])
        if authorize.status_code != 200:
            return
        (answer,) = forms_of(authorize)
        launch = self._send(client, "POST", answer.action, answer.fields)
        if launch.status_code in (200, 303):
            self.launched += 1


def test_postgresql_restarted_under_load_gives_503s_then_the_tool_recovers(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    database_url = private_postgres.url
    server = _serve_on(database_url, tmp_path / "restart")
    loads = [Load(server) for _ in range(2)]
    threads = [threading.Thread(target=load.run) for load in loads]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        private_postgres.stop("fast")  # active transactions are cut off, as in a crash
        time.sleep(2)
        private_postgres.start()
        time.sleep(3)
    finally:
        for load in loads:
            load.stop.set()
        for thread in threads:
            thread.join(60)
    try:
        answers = [answer for load in loads for answer in load.answers]
        statuses = {status for _, status, _, _ in answers}
        assert 500 not in statuses, [a[:3] for a in answers if a[1] == 500]
        unavailable = [answer for answer in answers if answer[1] == 503]
        assert unavailable, "some request met the database down"
        for _, _, seconds, body in unavailable:
            assert seconds < FAIL_FAST_SECONDS
            assert "The tool cannot reach its database at the moment, so nothing was saved." in (
                body
            )
        assert statuses <= {200, 302, 303, 503}, statuses
        # The same process serves again once the database is back: no restart needed.
        assert server.process.poll() is None
        recovered = Load(server)
        client = DemoPlatformClient(server)
        try:
            recovered._one_launch(client)
        finally:
            client.close()
        assert recovered.launched == 1, recovered.answers
        # Nothing written half-way: every launch the tool recorded was answered as accepted.
        accepted = sum(load.launched for load in loads) + recovered.launched
        assert _launch_rows(database_url) == accepted
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def _trickled(body: bytes, seconds: float) -> Iterator[bytes]:
    """A request body sent slowly, so the request is still in flight when SIGTERM comes."""
    pieces = 10
    size = -(-len(body) // pieces)
    for start in range(0, len(body), size):
        time.sleep(seconds / pieces)
        yield body[start : start + size]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(
    workers: int, tmp_path: Path, new_database_url: object
) -> None:
    database_url = new_database_url("sqlite")  # type: ignore[operator]
    server = _serve_on(database_url, tmp_path / "shutdown", workers=workers)
    try:
        client = DemoPlatformClient(server)
        login_form = client.pick("ana")
        client.close()
        body = str(httpx.QueryParams(login_form.fields)).encode()
        answer: dict[str, object] = {}

        def send() -> None:
            try:
                answer["response"] = httpx.post(
                    login_form.action,
                    content=_trickled(body, 3.0),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=30,
                )
            except httpx.HTTPError as error:
                answer["error"] = error

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        sender.join(30)
        assert "error" not in answer, answer
        response = answer["response"]
        assert isinstance(response, httpx.Response)
        assert response.status_code in (302, 303), response.text
        assert "/demo-platform/auth" in response.headers["location"]
        assert server.process.wait(SHUTDOWN_BOUND_SECONDS) == 0
        assert time.monotonic() - stopped < SHUTDOWN_BOUND_SECONDS
        log = server.log()
        assert log.count("Application shutdown complete.") == workers, log
        assert "Traceback" not in log, log
    finally:
        server.stop()


@pytest.mark.parametrize("migrate_first", [True, False])
def test_serve_with_the_database_down_says_so_and_exits_1(
    tmp_path: Path, migrate_first: bool
) -> None:
    # A port nothing listens on: the database server is down.
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    command = [sys.executable, "-m", "adaptive_lti.cli", "serve", "--port", "0"]
    if not migrate_first:
        command.append("--no-migrate")
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=serve_environment(down, tmp_path, "http://127.0.0.1:8000"),
    )
    assert finished.returncode == 1, finished.stderr
    assert "cannot be used" in finished.stderr and "Connection refused" in finished.stderr
    assert "ADAPTIVE_LTI_DATABASE_URL" in finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
