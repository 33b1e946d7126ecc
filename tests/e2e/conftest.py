"""End-to-end fixtures: the real server (``adaptive-lti demo`` in a subprocess) and a browser-like
client that walks the demo platform's launches over real HTTP.

- ``start_server(...)`` starts one server process on a free port and waits until it answers;
- ``running_server`` is a server on a fresh database, once on SQLite and once on PostgreSQL;
- ``DemoPlatformClient`` follows what a browser would: the home page, the launch button, the
  auto-submitting forms, the redirects, with cookies. Each step is also callable alone, so tests
  can tamper with one step or send a step to another server process.

Other end-to-end tests (learner journeys) reuse these: ``client.launch_as("ana")`` returns the
tool's page after a full launch, and ``client.submit(form)`` posts any form found on a page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from adaptive_lti.lti.session import ToolSession

SERVER_START_TIMEOUT_SECONDS = 60
# Tests share one secret so that several server processes accept each other's signed values.
E2E_SECRET_KEY = "e2e-secret-key-that-is-long-enough-0123456789"
URL_LINE = re.compile(r"open (http://\S+)/ in your browser")


# --- the server ---------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a process manager stops it; SIGKILL if it has not exited 10 s later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class RunningServer:
    """One ``adaptive-lti demo`` process. ``url`` is where it listens; ``base_url`` is the public
    origin it believes it has (the same for every process behind one "load balancer")."""

    url: str
    base_url: str
    database_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def start_server(
    database_url: str,
    data_dir: Path,
    *,
    base_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "server",
) -> RunningServer:
    """Start ``adaptive-lti demo`` on a free port and wait for ``/healthz``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")}
    env.update(
        {
            "ADAPTIVE_LTI_ENVIRONMENT": "test",
            "ADAPTIVE_LTI_SECRET_KEY": E2E_SECRET_KEY,
            "ADAPTIVE_LTI_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if base_url is not None:
        env["ADAPTIVE_LTI_BASE_URL"] = base_url
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "adaptive_lti.cli",
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--database-url",
        database_url,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {process.returncode}:\n{log_path.read_text()}"
            )
        match = URL_LINE.search(log_path.read_text(errors="replace"))
        if match:
            url = match.group(1)
            break
        time.sleep(0.05)
    if url is None:
        process.kill()
        raise RuntimeError(f"the server did not start in time:\n{log_path.read_text()}")
    # The printed URL is the public one; the process listens where it says it does (the two
    # differ when a public base URL is forced, as behind a load balancer).
    listen_url = _listen_url_from_log(log_path)
    server = RunningServer(
        url=listen_url,
        base_url=url,
        database_url=database_url,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
    )
    while time.monotonic() < deadline:
        try:
            if httpx.get(listen_url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the server never answered /healthz:\n{server.log()}")


def _listen_url_from_log(log_path: Path) -> str:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    pattern = re.compile(r"listening on (http://\S+)")
    while time.monotonic() < deadline:
        match = pattern.search(log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        time.sleep(0.05)
    raise RuntimeError(f"the server did not say where it listens:\n{log_path.read_text()}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running_server(
    request: pytest.FixtureRequest,
    new_database_url: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The real server on a fresh database (SQLite, then PostgreSQL), for a module's tests."""
    backend: str = request.param
    server = start_server(new_database_url(backend), tmp_path_factory.mktemp(f"e2e-{backend}"))
    yield server
    server.stop()


# --- a browser-like client ----------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    buttons: list[dict[str, str]] = field(default_factory=list)
    autosubmit: bool = False


class FormParser(HTMLParser):
    """Collects the forms of a page with their hidden and text fields and their buttons."""

    def __init__(self, page_url: str) -> None:
        super().__init__()
        self.page_url = page_url
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(
                action=urljoin(self.page_url, attributes.get("action") or self.page_url),
                method=(attributes.get("method") or "get").upper(),
                fields={},
                autosubmit="data-autosubmit" in attributes,
            )
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and attributes.get("name"):
            if attributes.get("type", "text") not in {"checkbox", "radio", "submit"} or (
                "checked" in attributes
            ):
                self._current.fields[attributes["name"]] = attributes.get("value", "")
        elif self._current is not None and tag == "button":
            self._current.buttons.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_of(response: httpx.Response) -> list[Form]:
    parser = FormParser(str(response.url))
    parser.feed(response.text)
    return parser.forms


@dataclass
class Step:
    method: str
    url: str
    status: int


class DemoPlatformClient:
    """Walks launches the way a browser does, recording each request (``steps``)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = httpx.Client(timeout=15, follow_redirects=False)
        self.steps: list[Step] = []

    def close(self) -> None:
        self.http.close()

    def _to(self, url: str, via: RunningServer | None) -> str:
        """Send a public URL to the process ``via`` (or ours): a stand-in load balancer."""
        target = via or self.server
        if url.startswith(self.server.base_url):
            return target.url + url[len(self.server.base_url) :]
        return url

    def request(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        via: RunningServer | None = None,
        follow: bool = True,
    ) -> httpx.Response:
        """One request, then redirects followed (each is recorded)."""
        response = self.http.request(method, self._to(url, via), data=data)
        self.steps.append(Step(method, url, response.status_code))
        while follow and response.is_redirect:
            location = urljoin(url, response.headers["location"])
            url = location
            response = self.http.get(self._to(url, via))
            self.steps.append(Step("GET", url, response.status_code))
        return response

    def submit(
        self, form: Form, *, via: RunningServer | None = None, follow: bool = True, **fields: str
    ) -> httpx.Response:
        data = {**form.fields, **fields}
        if form.method == "POST":
            return self.request("POST", form.action, data=data, via=via, follow=follow)
        query = httpx.QueryParams(data)
        return self.request("GET", f"{form.action}?{query}", via=via, follow=follow)

    # The launch, step by step.
    def home(self) -> httpx.Response:
        response = self.request("GET", self.server.base_url + "/")
        assert response.status_code == 200, response.text
        return response

    def pick(self, person: str) -> Form:
        """The home page's launch button for ``person``; pressing it gives the login form."""
        return self.press("data-person", person, "launch button")

    def press(self, attribute: str, person: str, what: str) -> Form:
        """Press the home page's button whose ``attribute`` names ``person``: the login form for
        the tool that it answers with."""
        for form in forms_of(self.home()):
            if any(button.get(attribute) == person for button in form.buttons):
                response = self.submit(form)
                assert response.status_code == 200, response.text
                (login,) = forms_of(response)
                assert login.autosubmit
                return login
        raise AssertionError(f"no {what} for {person!r} on the demo platform's home page")

    def login(self, login_form: Form, *, via: RunningServer | None = None) -> httpx.Response:
        """Post the login initiation to the tool; its answer redirects to the platform's auth."""
        response = self.submit(login_form, via=via, follow=False)
        assert response.is_redirect, f"{response.status_code}: {response.text}"
        return response

    def authorize(self, login_response: httpx.Response) -> Form:
        """Follow the tool's redirect to the platform's auth endpoint: the form_post to send."""
        auth_url = urljoin(str(login_response.url), login_response.headers["location"])
        response = self.request("GET", auth_url)
        assert response.status_code == 200, response.text
        (answer,) = forms_of(response)
        assert answer.autosubmit
        return answer

    def launch(self, answer: Form, *, via: RunningServer | None = None) -> httpx.Response:
        """Post the id_token to the tool's launch URL and follow where it sends the browser."""
        return self.submit(answer, via=via)

    def launch_as(self, person: str) -> httpx.Response:
        """A whole launch as ``person``: the tool's page at the end."""
        return self.launch(self.authorize(self.login(self.pick(person))))


@pytest.fixture
def demo_client(running_server: RunningServer) -> Iterator[DemoPlatformClient]:
    client = DemoPlatformClient(running_server)
    yield client
    client.close()


def path_of(url: str) -> str:
    return urlsplit(url).path


# --- what the tool made of a launch ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordedLaunchRow:
    subject: str | None
    name: str | None
    roles_short: list[str]
    custom: dict[str, str]
    locale: str | None
    ext: dict[str, str] | None
    tool_platform: dict[str, str] | None


def recorded_launches(server: RunningServer) -> list[RecordedLaunchRow]:
    """Every launch the tool recorded in the server's database, oldest first."""
    from sqlalchemy import select

    from adaptive_lti.db.session import make_engine
    from adaptive_lti.db.tables import Launch, User

    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    User.subject,
                    User.name,
                    Launch.roles_short,
                    Launch.custom,
                    Launch.locale,
                    Launch.ext,
                    Launch.tool_platform,
                )
                .outerjoin(User, Launch.user_id == User.id)
                .order_by(Launch.id)
            ).all()
    finally:
        engine.dispose()
    return [RecordedLaunchRow(*row) for row in rows]


def tool_session_of(response: httpx.Response) -> ToolSession:
    """The tool session the launch answer issued (its cookie), verified with the test secret."""
    from datetime import UTC, datetime

    from adaptive_lti.lti import session as tool_session

    token = response.cookies.get(tool_session.COOKIE)
    assert token, f"the launch answer set no {tool_session.COOKIE} cookie"
    return tool_session.verify(token, E2E_SECRET_KEY, datetime.now(UTC))
