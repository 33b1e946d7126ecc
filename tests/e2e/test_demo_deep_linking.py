"""Deep linking through the demo platform, over real HTTP against the real server: the instructor
presses "Add an activity (deep linking)" on the demo platform's home page, picks the example
course's design in the tool, the demo platform verifies the tool's signed response and adds the
activity; a learner then launches the new activity and is routed by the design it carries.
Refusals (forged signature, wrong audience, replay, nothing chosen) add nothing. On SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from adaptive_lti.core.catalogue import BindingMethod, Tenant
from adaptive_lti.db import designs_repo, registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory
from adaptive_lti.demo.platform import DEMO_CLIENT_ID
from adaptive_lti.lti import keys
from tests.e2e.conftest import (
    DemoPlatformClient,
    Form,
    RunningServer,
    forms_of,
    path_of,
    recorded_launches,
)

EXAMPLE_DESIGN = "intro-programming"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def added_activity_ids(client: DemoPlatformClient) -> list[str]:
    return re.findall(r'<tr data-added-activity="(\d+)"', client.home().text)


def start_deep_linking(client: DemoPlatformClient, person: str = "irene") -> Form:
    """Press the instructor's "Add an activity" button: the login form for the tool."""
    return client.press("data-deep-linking", person, "'Add an activity' button")


def open_picker(client: DemoPlatformClient) -> tuple[Form, dict[str, Any]]:
    """The whole deep linking launch: the tool's design picker, and the id_token it was sent."""
    login = start_deep_linking(client)
    assert login.fields["lti_message_hint"] == "0"  # Moodle's course module for deep linking
    answer = client.authorize(client.login(login))
    claims = jwt.decode(answer.fields["id_token"], options={"verify_signature": False})
    picker = client.launch(answer)
    assert picker.status_code == 200, picker.text
    select = next(form for form in forms_of(picker) if path_of(form.action).endswith("/select"))
    return select, claims


def tool_response(client: DemoPlatformClient, select: Form, **fields: str) -> Form:
    """Submit the picker; the tool answers with the auto-submitting form to the platform."""
    answer = client.submit(select, **fields)
    assert answer.status_code == 200, answer.text
    [back] = [form for form in forms_of(answer) if "JWT" in form.fields]
    assert back.autosubmit
    return back


def test_an_instructor_adds_an_activity_by_deep_linking_and_a_learner_is_routed_by_it(
    running_server: RunningServer,
) -> None:
    teacher = DemoPlatformClient(running_server)
    try:
        before = added_activity_ids(teacher)
        select, request_claims = open_picker(teacher)
        # The request is shaped like Moodle 4.5's.
        assert request_claims[LTI + "message_type"] == "LtiDeepLinkingRequest"
        assert LTI + "resource_link" not in request_claims
        settings = request_claims[DL_SETTINGS]
        assert settings["accept_types"] == ["ltiResourceLink"]
        assert settings["accept_presentation_document_targets"] == ["frame", "iframe", "window"]
        assert settings["accept_multiple"] is True and settings["auto_create"] is False
        assert "data" not in settings
        assert settings["deep_link_return_url"].startswith(
            running_server.base_url + "/demo-platform/deep-linking/return?course=2&id=1&sesskey="
        )
        back = tool_response(teacher, select, design=EXAMPLE_DESIGN, action="add")
        assert back.action == settings["deep_link_return_url"]
        done = teacher.submit(back)
        assert done.status_code == 200, done.text
        assert "Activity added to the course" in done.text
        [new_id] = re.findall(r'<tr data-added-activity="(\d+)"', done.text)

        # A replay of the same response is refused and adds nothing.
        replay = teacher.submit(back)
        assert replay.status_code == 400
        assert "nonce was used" in replay.text
        after = added_activity_ids(teacher)
        assert after == [*before, new_id]
        home = teacher.home().text
        assert "design=intro-programming" in home
    finally:
        teacher.close()

    # The gradebook has a column for the new activity (the item's lineItem).
    gradebook = httpx.get(running_server.url + "/demo-platform/gradebook", timeout=15)
    assert gradebook.text.count("(out of 100)") >= 2

    # A learner launches the new activity from the home page and is routed by its design.
    learner = DemoPlatformClient(running_server)
    try:
        [launch_form] = [
            form
            for form in forms_of(learner.home())
            if any(button.get("data-launch-activity") == new_id for button in form.buttons)
        ]
        login_page = learner.submit(launch_form, person="ana")
        assert login_page.status_code == 200, login_page.text
        (login,) = forms_of(login_page)
        assert login.fields["lti_message_hint"] == new_id
        answer = learner.authorize(learner.login(login))
        claims = jwt.decode(answer.fields["id_token"], options={"verify_signature": False})
        assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
        assert claims[LTI + "custom"]["design"] == EXAMPLE_DESIGN
        resource_link_id = claims[LTI + "resource_link"]["id"]
        assert resource_link_id != "1"
        assert claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitem"]
        page = learner.launch(answer)
        assert page.status_code == 200, page.text
    finally:
        learner.close()
    assert recorded_launches(running_server)[-1].custom["design"] == EXAMPLE_DESIGN

    engine = make_engine(running_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            registration = registrations_repo.find_registration(
                session, running_server.base_url + "/demo-platform", DEMO_CLIENT_ID
            )
            assert registration is not None
            deployment = registrations_repo.find_deployment(session, registration.id, "1")
            assert deployment is not None
            binding = designs_repo.find_binding(
                session, Tenant(registration.id), deployment.id, resource_link_id
            )
    finally:
        engine.dispose()
    assert binding is not None
    assert binding.design_id == EXAMPLE_DESIGN
    assert binding.method is BindingMethod.deep_link
    assert binding.bound_by == "Irene Ibsen (user 10)"


def _sign_as_tool(server: RunningServer, claims: dict[str, Any]) -> str:
    """A response signed with the tool's real key (read from its database), claims as given."""
    engine = make_engine(server.database_url)
    try:
        with make_session_factory(engine)() as session:
            key = keys.signing_key(session)
    finally:
        engine.dispose()
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def test_forged_wrongly_addressed_and_empty_responses_add_nothing(
    running_server: RunningServer,
) -> None:
    client = DemoPlatformClient(running_server)
    try:
        before = added_activity_ids(client)
        select, _claims = open_picker(client)
        back = tool_response(client, select, design=EXAMPLE_DESIGN, action="add")
        genuine = back.fields["JWT"]

        forged = genuine[:-6] + ("AAAAAA" if not genuine.endswith("AAAAAA") else "BBBBBB")
        refused = client.submit(back, JWT=forged)
        assert refused.status_code == 400
        assert "valid signature" in refused.text

        claims = jwt.decode(genuine, options={"verify_signature": False})
        now = datetime.now(UTC)
        wrong_audience = {
            **claims,
            "aud": ["https://another-platform.example"],
            "nonce": "other-nonce-1",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
        }
        refused = client.submit(back, JWT=_sign_as_tool(running_server, wrong_audience))
        assert refused.status_code == 400
        assert "addressed to another platform" in refused.text

        wrong_deployment = {
            **wrong_audience,
            "aud": [running_server.base_url + "/demo-platform"],
            "nonce": "other-nonce-2",
            LTI + "deployment_id": "99",
        }
        refused = client.submit(back, JWT=_sign_as_tool(running_server, wrong_deployment))
        assert refused.status_code == 400
        assert "deployment_id" in refused.text

        forged_session = client.request(
            "POST",
            back.action.replace("sesskey=", "sesskey=x"),
            data={"JWT": genuine},
        )
        assert forged_session.status_code == 400

        # The teacher cancels in the tool: an empty list of items comes back.
        select, _claims = open_picker(client)
        cancelled = tool_response(client, select, action="cancel")
        nothing = client.submit(cancelled)
        assert nothing.status_code == 400
        assert "returned no activity" in nothing.text

        assert added_activity_ids(client) == before
    finally:
        client.close()


def test_only_the_instructor_can_add_an_activity(running_server: RunningServer) -> None:
    response = httpx.post(
        running_server.url + "/demo-platform/deep-linking/start",
        data={"person": "ana"},
        timeout=15,
    )
    assert response.status_code == 403
    assert "only the instructor" in response.text
