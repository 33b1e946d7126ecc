"""Dynamic registration through the demo platform, over real HTTP against the real server: the
administrator opens Manage tools, pastes the tool's registration URL, and the frame opens the tool
with the demo platform's OpenID configuration and a single-use token. The tool (in the same server
process) fetches the configuration from itself and posts its registration to the demo platform:
this must not deadlock. The new tool is then listed as the platform and the tool see it, with the
tool's approval step when its settings ask for one. On SQLite and PostgreSQL (approval on SQLite)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory
from tests.e2e.conftest import (
    DemoPlatformClient,
    RunningServer,
    forms_of,
    start_server,
    tool_session_of,
)

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


def register_through_the_admin_page(
    client: DemoPlatformClient, *, update: str | None = None
) -> tuple[str, httpx.Response]:
    """Manage tools → "Add LTI Advantage" with the prefilled URL; then what the frame loads.

    When tools on the tool's domain exist, the platform asks (as Moodle does) whether to update
    one: ``update`` is the client id of the tool to update, else "Register as a new tool"."""
    server = client.server
    tools = client.request("GET", server.base_url + "/demo-platform/admin/tools")
    assert tools.status_code == 200, tools.text
    [form] = [
        form
        for form in forms_of(tools)
        if any("data-register-tool" in button for button in form.buttons)
    ]
    assert form.fields["tool_url"] == server.base_url + "/lti/register"
    opened = client.submit(form)
    assert opened.status_code == 200, opened.text
    choices = forms_of(opened)
    if any("registration_type" in choice.fields for choice in choices):
        wanted = "update" if update else "new"
        [choice] = [
            choice
            for choice in choices
            if choice.fields.get("registration_type") == wanted
            and (update is None or choice.fields.get("update_client_id") == update)
        ]
        opened = client.submit(choice)
        assert opened.status_code == 200, opened.text
    else:
        assert update is None, "the platform offered no update of an existing tool"
    match = re.search(r'<iframe id="registration-frame"[^>]* src="([^"]+)"', opened.text)
    assert match, opened.text
    start_url = html.unescape(match.group(1))
    started = time.monotonic()
    framed = client.request("GET", start_url)
    # The tool called the demo platform in its own server twice; a deadlock would time out.
    assert time.monotonic() - started < 10
    return start_url, framed


def platform_rows(client: DemoPlatformClient) -> dict[str, tuple[str, str]]:
    """Manage tools' rows: client id → (status on the platform, status at the tool)."""
    page = client.request("GET", client.server.base_url + "/demo-platform/admin/tools").text
    rows = re.findall(
        r'<tr data-tool-client-id="([^"]+)">.*?data-platform-status="([^"]+)".*?'
        r'data-tool-status="([^"]+)"',
        page,
        flags=re.S,
    )
    return {client_id: (platform, tool) for client_id, platform, tool in rows}


def stored_registration(
    server: RunningServer, client_id: str
) -> tuple[int, RegistrationStatus, str | None, bool]:
    engine = make_engine(server.database_url)
    try:
        with make_session_factory(engine)() as session:
            registration = registrations_repo.find_registration(
                session, server.base_url + "/demo-platform", client_id
            )
            assert registration is not None
            deployments = registrations_repo.list_deployments(session, registration.id)
    finally:
        engine.dispose()
    active = bool(deployments) and all(deployment.active for deployment in deployments)
    return registration.id, registration.status, registration.jwks_url, active


def test_an_administrator_registers_the_tool_by_dynamic_registration(
    running_server: RunningServer,
) -> None:
    client = DemoPlatformClient(running_server)
    try:
        configuration = client.request(
            "GET", running_server.base_url + "/demo-platform/.well-known/openid-configuration"
        ).json()
        issuer = running_server.base_url + "/demo-platform"
        assert configuration["issuer"] == issuer
        assert configuration["registration_endpoint"] == issuer + "/registration"
        platform = configuration["https://purl.imsglobal.org/spec/lti-platform-configuration"]
        assert platform["product_family_code"] == "moodle"
        assert {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]} in platform[
            "messages_supported"
        ]

        before = platform_rows(client)
        start_url, framed = register_through_the_admin_page(client)
        assert framed.status_code == 200, framed.text
        assert "data-lti-close" in framed.text  # the tool closes the frame (§3.7)
        assert "Ready." in framed.text  # tests run without the approval step

        rows = platform_rows(client)
        [client_id] = [key for key in rows if key not in before]
        # Pending on the platform until its administrator activates it, as in Moodle; the tool
        # accepts it at once (its settings do not ask for approval here).
        assert rows[client_id] == ("pending", "active")
        registration_id, status, jwks_url, deployment_active = stored_registration(
            running_server, client_id
        )
        assert status is RegistrationStatus.active
        assert jwks_url == issuer + "/jwks.json"
        assert deployment_active

        # A pending tool launches nowhere on the platform.
        launch_url = f"{running_server.base_url}/demo-platform/admin/tools/{client_id}/launch"
        refused = client.request("POST", launch_url, data={"person": "ana"})
        assert refused.status_code == 422
        assert "still pending" in refused.text

        # Moodle's "Activate".
        tools_page = client.request("GET", running_server.base_url + "/demo-platform/admin/tools")
        [activate] = [
            form
            for form in forms_of(tools_page)
            if form.action.endswith(f"/admin/tools/{client_id}/activate")
        ]
        client.submit(activate)
        assert platform_rows(client)[client_id] == ("active", "active")

        # The registration works: a launch through it (its own client id and deployment), for
        # which the tool fetches the platform's keys from its jwks_uri, in its own server.
        tools_page = client.request("GET", running_server.base_url + "/demo-platform/admin/tools")
        [try_launch] = [form for form in forms_of(tools_page) if form.action == launch_url]
        login_page = client.submit(try_launch, person="ana")
        assert login_page.status_code == 200, login_page.text
        (login,) = forms_of(login_page)
        assert login.fields["client_id"] == client_id
        deployment_id = login.fields["lti_deployment_id"]
        assert deployment_id not in ("", "1")
        page = client.launch(client.authorize(client.login(login)))
        assert page.status_code == 200, page.text
        session = tool_session_of(page)
        assert session.registration_id == registration_id

        # The token was single use: opening the same URL again is refused by the platform, and
        # the tool says so; nothing more is stored.
        again = client.request("GET", start_url)
        assert again.status_code == 502
        assert "refused the registration" in html.unescape(again.text)
        assert set(platform_rows(client)) == {*before, client_id}
    finally:
        client.close()


def test_moodles_update_of_an_existing_registration_updates_it_in_place(
    running_server: RunningServer,
) -> None:
    """Issue 8: Moodle offers "Update" when a tool on the domain exists; its update answers with
    the same client id, and the tool used to refuse it (409 "already registered")."""
    client = DemoPlatformClient(running_server)
    try:
        before = platform_rows(client)
        register_through_the_admin_page(client)
        [client_id] = [key for key in platform_rows(client) if key not in before]
        registration_id, _status, _jwks, _active = stored_registration(running_server, client_id)
        # The tool's endpoints were edited by hand since (a moved token URL, say).
        _admin_cli(
            running_server,
            "platform",
            "update",
            str(registration_id),
            "--token-url",
            "https://moved.example.edu/token",
        )

        _start, framed = register_through_the_admin_page(client, update=client_id)
        assert framed.status_code == 200, framed.text
        text = html.unescape(framed.text)
        assert "already registered" not in text
        assert "updated" in text.lower()
        assert "data-lti-close" in framed.text
        # One tool on the platform, one registration at the tool, endpoints back from the
        # platform's configuration, the deployment kept.
        assert set(platform_rows(client)) == {*before, client_id}
        again_id, status, jwks_url, active = stored_registration(running_server, client_id)
        assert again_id == registration_id
        assert status is RegistrationStatus.active and active
        issuer = running_server.base_url + "/demo-platform"
        assert jwks_url == issuer + "/jwks.json"
        shown = _admin_cli(running_server, "platform", "show", str(registration_id))
        assert shown["auth_token_url"] == issuer + "/token"
        assert [d["deployment_id"] for d in shown["deployments"]]  # type: ignore[union-attr]
    finally:
        client.close()


def test_the_registration_endpoint_refuses_like_moodle(running_server: RunningServer) -> None:
    endpoint = running_server.url + "/demo-platform/registration"
    body = {"client_name": "x"}
    no_token = httpx.post(endpoint, json=body, timeout=15)
    assert no_token.status_code == 401
    assert no_token.json()["error"] == "invalid_token"
    unknown = httpx.post(
        endpoint, json=body, headers={"Authorization": "Bearer made-up"}, timeout=15
    )
    assert unknown.status_code == 401
    not_json = httpx.post(
        endpoint, content=b"{", headers={"Authorization": "Bearer made-up"}, timeout=15
    )
    assert not_json.status_code in (400, 401)


def _admin_cli(server: RunningServer, *arguments: str) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")}
    env.update(
        {"ADAPTIVE_LTI_DATABASE_URL": server.database_url, "ADAPTIVE_LTI_ENVIRONMENT": "test"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "adaptive_lti.cli", *arguments, "--json"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def approving_server(
    new_database_url: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start_server(
        new_database_url("sqlite"),
        tmp_path_factory.mktemp("e2e-approval"),
        extra_env={"ADAPTIVE_LTI_REGISTRATION_REQUIRES_APPROVAL": "true"},
        name="approval",
    )
    yield server
    server.stop()


def test_a_tool_that_requires_approval_shows_the_command_until_approved(
    approving_server: RunningServer,
) -> None:
    client = DemoPlatformClient(approving_server)
    try:
        _start_url, framed = register_through_the_admin_page(client)
        assert framed.status_code == 200, framed.text
        assert "Waiting for approval" in framed.text
        [client_id] = list(platform_rows(client))
        assert platform_rows(client)[client_id] == ("pending", "awaiting-approval")
        registration_id, status, _jwks, _active = stored_registration(approving_server, client_id)
        assert status is RegistrationStatus.awaiting_approval
        page = client.request("GET", approving_server.base_url + "/demo-platform/admin/tools")
        assert f"adaptive-lti platform approve {registration_id}" in page.text

        _admin_cli(approving_server, "platform", "approve", str(registration_id))
        assert platform_rows(client)[client_id] == ("pending", "active")
        assert stored_registration(approving_server, client_id)[1] is RegistrationStatus.active
    finally:
        client.close()


def test_registrations_at_once_do_not_starve_the_server(running_server: RunningServer) -> None:
    """Each registration holds a worker thread while the tool calls the platform in the same
    server (configuration, then registration): several at once must all finish, not wait on
    each other for free threads."""
    at_once = 8

    def register_one(_: int) -> int:
        client = DemoPlatformClient(running_server)
        try:
            return register_through_the_admin_page(client)[1].status_code
        finally:
            client.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        statuses = list(pool.map(register_one, range(at_once)))
    assert statuses == [200] * at_once
    assert time.monotonic() - started < 30
