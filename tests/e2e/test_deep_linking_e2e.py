"""Deep linking over real HTTP against the real server: a Moodle-shaped platform (the scripted
platform's keys, registered in the server's database) sends a teacher's deep-linking request, the
teacher picks a design, and the signed response is verified with the server's published JWKS.
Then the created activity's first launch binds it. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from adaptive_lti.core.catalogue import BindingMethod, Tenant
from adaptive_lti.db import designs_repo, registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.services import design_publishing
from tests.design_samples import INTRO_V1, MOODLE_DEEP_LINKING_SETTINGS, by
from tests.e2e.conftest import RunningServer
from tests.lti.scripted_platform import INSTRUCTOR, LEARNER, LTI, ScriptedPlatform

CLIENT_ID = "e2e-deep-linking-client"
# Its own id: the demo publishes the example course (intro-programming) already.
DESIGN = INTRO_V1.replace("design: sample-programming", "design: e2e-intro").replace(
    "title: Introduction to Programming", "title: Deep linking in e2e"
)


def prepare(server: RunningServer, platform: ScriptedPlatform) -> None:
    """What an administrator and a course designer did beforehand: register, publish."""
    engine = make_engine(server.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            found = registrations_repo.find_registration(
                session, platform.issuer, platform.client_id
            )
            if found is None:
                found = platform.register(session, datetime.now(UTC), static=True)
            design_publishing.publish_design(
                session,
                Tenant(found.id),
                DESIGN,
                "e2e-intro.yaml",
                by("designer"),
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()


def launch(
    client: httpx.Client,
    server: RunningServer,
    platform: ScriptedPlatform,
    *,
    role: str,
    subject: str,
    mutate: Any,
) -> httpx.Response:
    base = server.base_url.rstrip("/")
    login = client.get(
        server.url + "/lti/login",
        params={
            "iss": platform.issuer,
            "client_id": platform.client_id,
            "login_hint": subject,
            "lti_message_hint": "0",
            "target_link_uri": base + "/lti/launch",
            "lti_deployment_id": platform.deployment_id,
        },
    )
    assert login.status_code == 302, login.text
    query = parse_qs(urlsplit(login.headers["location"]).query)
    claims = platform.claims(
        nonce=query["nonce"][0],
        now=datetime.now(UTC),
        role=role,
        subject=subject,
        target_link_uri=base + "/lti/launch",
        mutate=mutate,
    )
    return client.post(
        server.url + "/lti/launch",
        data={"id_token": platform.sign(claims), "state": query["state"][0]},
    )


def deep_linking_request(claims: dict[str, Any]) -> None:
    claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
    claims.pop(LTI + "resource_link")
    claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = dict(
        MOODLE_DEEP_LINKING_SETTINGS
    )


def test_a_teacher_attaches_a_design_by_deep_linking(running_server: RunningServer) -> None:
    platform = ScriptedPlatform(client_id=CLIENT_ID)
    prepare(running_server, platform)
    with httpx.Client(timeout=30) as teacher:
        picker = launch(
            teacher,
            running_server,
            platform,
            role=INSTRUCTOR,
            subject="4",
            mutate=deep_linking_request,
        )
        assert picker.status_code == 200, picker.text
        assert "Deep linking in e2e" in picker.text
        token = re.search(r'name="tool_session" value="([^"]+)"', picker.text)
        assert token
        answer = teacher.post(
            running_server.url + "/lti/deep-linking/select",
            data={"tool_session": token.group(1), "design": "e2e-intro"},
        )
    assert answer.status_code == 200, answer.text
    action = re.search(r'<form method="post" action="([^"]+)"', answer.text)
    response_jwt = re.search(r'name="JWT" value="([^"]+)"', answer.text)
    assert action and response_jwt
    assert html.unescape(action.group(1)) == MOODLE_DEEP_LINKING_SETTINGS["deep_link_return_url"]

    # The platform verifies the response with the tool's JWKS, fetched over HTTP.
    keys = httpx.get(running_server.url + "/.well-known/jwks.json", timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(response_jwt.group(1))["kid"]
    [jwk] = [key for key in keys if key["kid"] == kid]
    claims = jwt.decode(
        response_jwt.group(1),
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=platform.issuer,
        issuer=CLIENT_ID,
    )
    [item] = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["url"] == running_server.base_url.rstrip("/") + "/lti/launch"
    assert item["custom"] == {"design": "e2e-intro"}
    assert item["lineItem"]["resourceId"] == "e2e-intro"

    # Moodle creates the activity with those custom parameters; a student opens it.
    def activity_launch(launch_claims: dict[str, Any]) -> None:
        launch_claims[LTI + "custom"].update(item["custom"])
        launch_claims[LTI + "resource_link"]["id"] = "e2e-activity"

    with httpx.Client(timeout=30) as student:
        opened = launch(
            student, running_server, platform, role=LEARNER, subject="3", mutate=activity_launch
        )
    assert opened.status_code == 200, opened.text

    engine = make_engine(running_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            registration = registrations_repo.find_registration(session, platform.issuer, CLIENT_ID)
            assert registration is not None
            deployment = registrations_repo.find_deployment(session, registration.id, "1")
            assert deployment is not None
            binding = designs_repo.find_binding(
                session, Tenant(registration.id), deployment.id, "e2e-activity"
            )
    finally:
        engine.dispose()
    assert binding is not None
    assert binding.method is BindingMethod.deep_link
    assert binding.bound_by == "Teacher One (user 4)"
