"""Dynamic registration over real HTTP: the real server registers with a Moodle-shaped platform
listening on a local port (what an administrator's "Tool URL" does), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory
from tests.e2e.conftest import RunningServer
from tests.lti.fake_registration_platform import (
    TOOL_CONFIGURATION,
    FakeMoodle,
    moodle_configuration,
)


class _Bridge(BaseHTTPRequestHandler):
    """Serves a ``FakeMoodle`` (written for httpx.MockTransport) on a real socket."""

    moodle: FakeMoodle

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = httpx.Request(
            self.command,
            f"{self.moodle.site}{self.path}",
            headers=dict(self.headers.items()),
            content=self.rfile.read(length) if length else b"",
        )
        response = self.moodle.handle(request)
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@pytest.fixture
def moodle() -> Iterator[FakeMoodle]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bridge)
    site = f"http://127.0.0.1:{server.server_address[1]}"
    fake = FakeMoodle(site=site, configuration=moodle_configuration(site))
    _Bridge.moodle = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def test_the_real_server_registers_with_a_moodle_over_http(
    running_server: RunningServer, moodle: FakeMoodle
) -> None:
    moodle.client_id = f"e2e-{id(moodle)}"
    response = httpx.get(
        running_server.url + "/lti/register",
        params={
            "openid_configuration": moodle.site + "/mod/lti/openid-configuration.php",
            "registration_token": "single-use-token",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert "data-lti-close" in response.text
    [body] = moodle.registrations
    base = running_server.base_url.rstrip("/")
    assert body["initiate_login_uri"] == base + "/lti/login"
    assert body[TOOL_CONFIGURATION]["target_link_uri"] == base + "/lti/launch"
    assert moodle.authorizations == ["Bearer single-use-token"]

    # The tool publishes the key set Moodle will verify its deep-linking responses with.
    jwks = httpx.get(body["jwks_uri"].replace(base, running_server.url), timeout=10).json()
    assert jwks["keys"] and all(key["alg"] == "RS256" for key in jwks["keys"])

    engine = make_engine(running_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            stored = registrations_repo.find_registration(session, moodle.site, moodle.client_id)
            assert stored is not None
            assert stored.status is RegistrationStatus.active
            assert stored.jwks_url == moodle.site + "/mod/lti/certs.php"
            deployment = registrations_repo.find_deployment(
                session, stored.id, moodle.deployment_id
            )
            assert deployment is not None and deployment.active
    finally:
        engine.dispose()

    # The token was single use: a second attempt is refused and stores nothing more.
    again = httpx.get(
        running_server.url + "/lti/register",
        params={
            "openid_configuration": moodle.site + "/mod/lti/openid-configuration.php",
            "registration_token": "single-use-token",
        },
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert again.status_code == 502
    assert "refused the registration" in again.json()["message"]
