"""Full launches through the real server (``adaptive-lti demo``) over HTTP, as a browser makes
them from the demo platform: home page -> launch button -> OIDC login at the tool -> the
platform's auth endpoint -> the id_token form_post -> the tool's page. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from tests.e2e.conftest import (
    DemoPlatformClient,
    RunningServer,
    forms_of,
    path_of,
    recorded_launches,
    start_server,
    tool_session_of,
)


def test_the_root_opens_the_demo_platform(demo_client: DemoPlatformClient) -> None:
    page = demo_client.home()
    assert path_of(str(page.url)) == "/demo-platform/"
    assert [step.status for step in demo_client.steps] == [303, 200]
    people = {
        button["data-person"]
        for form in forms_of(page)
        for button in form.buttons
        if "data-person" in button
    }
    assert people == {"ana", "ben", "chen", "dara", "eve", "femi", "gabi", "irene"}


def test_a_learner_launch_reaches_the_landing_page(demo_client: DemoPlatformClient) -> None:
    page = demo_client.launch_as("ana")
    assert page.status_code == 200, page.text
    # The whole flow went through the real endpoints, in order.
    steps = [(step.method, path_of(step.url), step.status) for step in demo_client.steps]
    assert steps == [
        ("GET", "/", 303),
        ("GET", "/demo-platform/", 200),
        ("POST", "/demo-platform/launch", 200),
        ("POST", "/lti/login", 302),
        ("GET", "/demo-platform/auth", 200),
        ("POST", "/lti/launch", 200),
    ]
    assert tool_session_of(page).is_instructor is False
    # What the tool recorded: who she is, her role, and the background the platform sent.
    ana = recorded_launches(demo_client.server)[-1]
    assert (ana.subject, ana.name, ana.roles_short) == ("3", "Ana Alves", ["Learner"])
    assert ana.custom["prior_programming"] == "none" and ana.custom["goal"] == "interest"
    assert ana.ext == {"lms": "moodle-2", "user_username": "ana.alves"}
    assert ana.tool_platform is not None
    assert ana.tool_platform["product_family_code"] == "moodle"


@pytest.mark.parametrize("person", ["ben", "chen", "gabi"])
def test_other_learners_launch_too(demo_client: DemoPlatformClient, person: str) -> None:
    page = demo_client.launch_as(person)
    assert page.status_code == 200, page.text
    recorded = recorded_launches(demo_client.server)[-1]
    assert recorded.name is not None and recorded.name.lower().startswith(person)
    assert recorded.roles_short == ["Learner"]


def test_backgrounds_and_locale_reach_the_tool(demo_client: DemoPlatformClient) -> None:
    demo_client.launch_as("chen")
    chen = recorded_launches(demo_client.server)[-1]
    assert chen.locale == "pt_br"
    assert chen.custom["prior_programming"] == "some" and chen.custom["goal"] == "academic"
    demo_client.launch_as("gabi")
    gabi = recorded_launches(demo_client.server)[-1]
    assert "prior_programming" not in gabi.custom and "goal" not in gabi.custom


def test_the_instructor_reaches_the_course_page(demo_client: DemoPlatformClient) -> None:
    page = demo_client.launch_as("irene")
    assert page.status_code == 200, page.text
    session = tool_session_of(page)
    assert session.is_instructor is True
    assert recorded_launches(demo_client.server)[-1].roles_short == ["Instructor"]
    assert "Introduction to Programming" in page.text


def test_the_login_redirect_asks_the_platform_as_the_spec_says(
    demo_client: DemoPlatformClient,
) -> None:
    login = demo_client.login(demo_client.pick("dara"))
    location = urlsplit(login.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        demo_client.server.base_url + "/demo-platform/auth"
    )
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["scope"] == "openid"
    assert query["response_type"] == "id_token"
    assert query["response_mode"] == "form_post"
    assert query["prompt"] == "none"
    assert query["redirect_uri"] == demo_client.server.base_url + "/lti/launch"
    assert query["login_hint"] == "6"
    assert query["lti_message_hint"] == "7"
    assert len(query["state"]) >= 22 and len(query["nonce"]) >= 22  # at least 128 bits


def test_a_replayed_id_token_is_refused(demo_client: DemoPlatformClient) -> None:
    answer = demo_client.authorize(demo_client.login(demo_client.pick("eve")))
    first = demo_client.launch(answer)
    assert first.status_code == 200, first.text
    replay = demo_client.launch(answer)
    assert replay.status_code == 401, replay.text
    # Even in a fresh browser that never saw the first launch.
    stranger = DemoPlatformClient(demo_client.server)
    try:
        assert stranger.launch(answer).status_code == 401
    finally:
        stranger.close()


def test_a_tampered_id_token_is_refused_by_its_signature(demo_client: DemoPlatformClient) -> None:
    """A token whose payload is valid JSON with one claim changed, under the old signature:
    only the signature check can refuse it (a broken payload would be refused as its format)."""
    answer = demo_client.authorize(demo_client.login(demo_client.pick("femi")))
    header, payload, signature = answer.fields["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["name"] = "Mallory Impostor"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert forged != payload
    response = demo_client.submit(answer, id_token=f"{header}.{forged}.{signature}")
    assert response.status_code == 401, response.text
    assert "Launch refused: signature" in response.text
    assert "signature does not match its content" in response.text
    # The genuine token still works: the forged one consumed nothing.
    assert demo_client.launch(answer).status_code == 200


def test_a_platform_error_reaches_the_tool_as_a_friendly_page(
    demo_client: DemoPlatformClient,
) -> None:
    login = demo_client.login(demo_client.pick("ana"))
    location = urlsplit(login.headers["location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    query["prompt"] = "login"  # Moodle's auth.php answers "invalid_request: Invalid prompt"
    response = demo_client.request(
        "GET", demo_client.server.base_url + "/demo-platform/auth?" + str(httpx.QueryParams(query))
    )
    (error_form,) = forms_of(response)
    assert error_form.fields["error"] == "invalid_request"
    page = demo_client.launch(error_form)
    assert 400 <= page.status_code < 500
    assert "Invalid prompt" in page.text


def test_the_tool_publishes_its_keys(demo_client: DemoPlatformClient) -> None:
    response = demo_client.request("GET", demo_client.server.base_url + "/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all({"kid", "alg", "use", "n", "e"} <= set(key) for key in keys)
    assert all("d" not in key for key in keys)


# --- two server processes sharing one database --------------------------------------------------


@pytest.fixture(scope="module")
def second_server(
    running_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Another process on the same database and data directory, behind the same public URL."""
    server = start_server(
        running_server.database_url,
        running_server.data_dir,
        base_url=running_server.base_url,
        name="second-server",
    )
    yield server
    server.stop()


def test_a_login_on_one_process_and_the_launch_on_another(
    demo_client: DemoPlatformClient, second_server: RunningServer
) -> None:
    login = demo_client.login(demo_client.pick("chen"))  # served by the first process
    answer = demo_client.authorize(login)
    page = demo_client.launch(answer, via=second_server)  # served by the second
    assert page.status_code == 200, page.text
    assert recorded_launches(demo_client.server)[-1].subject == "5"
    # And the replay is refused by the first process: the nonce was spent in the shared database.
    assert demo_client.launch(answer).status_code == 401


def test_the_second_process_did_not_register_the_platform_twice(
    running_server: RunningServer, second_server: RunningServer
) -> None:
    from adaptive_lti.db import registrations_repo
    from adaptive_lti.db.session import make_engine, make_session_factory, transaction

    engine = make_engine(running_server.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            registrations = registrations_repo.list_registrations(session)
    finally:
        engine.dispose()
    assert [r.issuer for r in registrations] == [running_server.base_url + "/demo-platform"]
    assert second_server.process.poll() is None


def test_the_demo_keeps_its_key_private(running_server: RunningServer) -> None:
    key_file: Path = running_server.data_dir / "demo-platform-key.pem"
    assert key_file.stat().st_mode & 0o077 == 0


# --- concurrent launches ----------------------------------------------------------------------------


def test_concurrent_launches_all_succeed(running_server: RunningServer) -> None:
    """16 browsers launching at once: no launch may fail on a lock or a lost login state."""
    people = ["ana", "ben", "chen", "dara", "eve", "femi", "gabi", "irene"] * 2
    before = len(recorded_launches(running_server))

    def launch(person: str) -> list[int]:
        client = DemoPlatformClient(running_server)
        try:
            return [client.launch_as(person).status_code for _ in range(2)]
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        statuses = [status for result in pool.map(launch, people) for status in result]
    assert statuses == [200] * len(statuses), running_server.log()[-3000:]
    assert len(recorded_launches(running_server)) == before + len(statuses)


def test_the_new_window_fallback_restarts_the_launch_from_the_platform(
    demo_client: DemoPlatformClient,
) -> None:
    """Issue 8: with the tool's cookies blocked in the frame, the fallback link reused the
    platform's hint, which Moodle (and the demo platform) accept once: "Invalid request". The
    link now goes to the platform's mod/lti/launch.php for the activity, which starts afresh."""
    login = demo_client.pick("ana")
    redirected = demo_client.login(login)
    answer = demo_client.authorize(redirected)
    # The browser kept the tool's state cookie out of the frame.
    for cookie in list(demo_client.http.cookies.jar):
        if cookie.name.startswith("lti1p3-"):
            demo_client.http.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    fallback = demo_client.launch(answer)
    assert fallback.status_code == 401
    assert "Open in a new window" in fallback.text
    [link] = re.findall(r'<a class="button" href="([^"]+)"', fallback.text)
    link = html.unescape(link)
    assert path_of(link) == "/demo-platform/mod/lti/launch.php" and link.endswith("?id=7")

    # The login's hint was used: repeating it (the old link) ends on the platform's refusal.
    again = demo_client.request(
        "GET", demo_client.server.base_url + "/lti/login?" + urlencode(login.fields), follow=False
    )
    assert again.is_redirect
    refused = demo_client.request("GET", urljoin(str(again.url), again.headers["location"]))
    assert "No launch id in LTI hint" in html.unescape(refused.text) or refused.status_code >= 400

    # The new window: the platform starts a new launch of the activity, which works.
    started = demo_client.request("GET", link)
    assert started.status_code == 200, started.text
    (new_login,) = forms_of(started)
    page = demo_client.launch(demo_client.authorize(demo_client.login(new_login)))
    assert page.status_code == 200, page.text
    assert "Open in a new window" not in page.text
