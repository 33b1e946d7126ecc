"""The demo platform's token endpoint, AGS and NRPS services and gradebook, as a tool calls them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from adaptive_lti.cli.app import build_app
from adaptive_lti.db import migrate
from adaptive_lti.db.session import transaction
from adaptive_lti.demo.platform import DemoPlatform
from adaptive_lti.demo.services import NRPS_SCOPE, SUPPORTED_SCOPES
from adaptive_lti.lti import keys
from adaptive_lti.settings import Settings

BASE = "http://testserver"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULTS = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
LINE_ITEM_PATH = "/demo-platform/services/2/lineitems/1/lineitem"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate.upgrade(database_url)
    settings = Settings(
        environment="test",
        database_url=database_url,
        base_url=BASE,
        demo_platform=True,
        demo_platform_key_file=tmp_path / "demo-platform.pem",
        secret_key="s" * 40,
    )
    app = build_app(settings)
    with transaction(app.state.session_factory) as session:
        keys.ensure_signing_key(session, settings, datetime.now(UTC))
    with TestClient(app, base_url=BASE) as client:
        yield client


def platform_of(client: TestClient) -> DemoPlatform:
    platform: DemoPlatform = client.app.state.demo_platform  # type: ignore[attr-defined]
    return platform


def assertion(client: TestClient, **overrides: Any) -> str:
    """A client-credentials assertion signed by the tool's key, as the tool makes it."""
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        signing = keys.signing_key(session)
    platform = platform_of(client)
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.token_url,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, signing.private_key, algorithm="RS256", headers={"kid": signing.kid})


def token_request(client: TestClient, scopes: list[str], **fields: str) -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(client),
        "scope": " ".join(scopes),
        **fields,
    }
    return client.post("/demo-platform/token", data=form)


def bearer(client: TestClient, *scopes: str) -> dict[str, str]:
    response = token_request(client, list(scopes))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def score(user_id: str, given: float | None = 7.5, maximum: float = 10) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": user_id,
        "scoreMaximum": maximum,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2026-11-24T09:00:00+00:00",
        "comment": "well done",
    }
    if given is not None:
        body["scoreGiven"] = given
    return body


# --- token ---------------------------------------------------------------------------------------


def test_a_token_is_json_sent_as_text_html_like_moodle(client: TestClient) -> None:
    response = token_request(client, [SCORE, "https://example.org/unknown-scope"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == SCORE  # only what the platform offers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_assertion_type": "basic"}, "invalid_request"),
        ({"client_assertion": ""}, "invalid_request"),
        ({"client_assertion": "not.a.jwt"}, "invalid_client"),
        ({"scope": "https://example.org/nothing-offered"}, "invalid_scope"),
    ],
)
def test_bad_token_requests_get_oauth_errors(
    client: TestClient, change: dict[str, str], error: str
) -> None:
    response = token_request(client, [SCORE], **change)
    assert response.status_code == 400
    assert response.json()["error"] == error


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "http://testserver/other-token-url"},
        {"iss": "someone-else"},
        {"sub": "someone-else"},
        {"exp": 1_000},
        {"jti": None},
    ],
)
def test_a_bad_assertion_is_refused(client: TestClient, claims: dict[str, Any]) -> None:
    response = token_request(client, [SCORE], client_assertion=assertion(client, **claims))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_an_assertion_signed_by_an_unknown_key_is_refused(client: TestClient) -> None:
    other = platform_of(client).key  # the platform's own key is not one the tool publishes
    forged = jwt.encode(
        {"iss": "x", "sub": "x", "aud": "x", "iat": 1, "exp": 2, "jti": "j"},
        other.private_key,
        algorithm="RS256",
        headers={"kid": other.kid},
    )
    response = token_request(client, [SCORE], client_assertion=forged)
    assert response.status_code == 400
    assert "no key with kid" in response.json()["error_description"]


def test_an_assertion_is_good_for_one_token(client: TestClient) -> None:
    once = assertion(client)
    assert token_request(client, [SCORE], client_assertion=once).status_code == 200
    again = token_request(client, [SCORE], client_assertion=once)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


# --- AGS -----------------------------------------------------------------------------------------


def test_services_need_a_bearer_token_with_the_right_scope(client: TestClient) -> None:
    unauthenticated = client.post(LINE_ITEM_PATH + "/scores?type_id=1", json=score("3"))
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    forged = client.post(
        LINE_ITEM_PATH + "/scores", json=score("3"), headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 401
    wrong_scope = client.post(
        LINE_ITEM_PATH + "/scores", json=score("3"), headers=bearer(client, RESULTS)
    )
    assert wrong_scope.status_code == 403


def test_a_score_is_rescaled_to_the_line_item_maximum(client: TestClient) -> None:
    headers = bearer(client, SCORE, RESULTS)
    posted = client.post(LINE_ITEM_PATH + "/scores?type_id=1", json=score("3"), headers=headers)
    assert posted.status_code == 200, posted.text
    results = client.get(LINE_ITEM_PATH + "/results?type_id=1", headers=headers)
    assert results.status_code == 200
    assert results.headers["content-type"].startswith(
        "application/vnd.ims.lis.v2.resultcontainer+json"
    )
    (result,) = results.json()
    assert result["userId"] == "3"
    assert (result["resultScore"], result["resultMaximum"]) == (75.0, 100.0)
    assert result["scoreOf"] == BASE + LINE_ITEM_PATH + "?type_id=1"
    only_ben = client.get(LINE_ITEM_PATH + "/results?user_id=4", headers=headers)
    assert only_ben.json() == []


def test_the_instructor_and_strangers_cannot_be_graded(client: TestClient) -> None:
    headers = bearer(client, SCORE)
    for user_id in ("10", "999"):
        response = client.post(LINE_ITEM_PATH + "/scores", json=score(user_id), headers=headers)
        assert response.status_code == 400
        assert "cannot be graded" in response.json()["error_description"]


@pytest.mark.parametrize(
    "body",
    [
        {**score("3"), "scoreGiven": "7"},
        {**score("3"), "scoreMaximum": 0},
        {**score("3"), "scoreGiven": -1},
        {**score("3"), "activityProgress": "Done"},
        {key: value for key, value in score("3").items() if key != "timestamp"},
    ],
)
def test_a_malformed_score_is_refused_and_nothing_stored(
    client: TestClient, body: dict[str, Any]
) -> None:
    headers = bearer(client, SCORE, RESULTS)
    assert client.post(LINE_ITEM_PATH + "/scores", json=body, headers=headers).status_code == 400
    assert client.get(LINE_ITEM_PATH + "/results", headers=headers).json() == []


def test_a_progress_only_score_keeps_no_grade(client: TestClient) -> None:
    headers = bearer(client, SCORE, RESULTS)
    body = {**score("5", given=None), "activityProgress": "Started", "gradingProgress": "Pending"}
    assert client.post(LINE_ITEM_PATH + "/scores", json=body, headers=headers).status_code == 200
    (result,) = client.get(LINE_ITEM_PATH + "/results", headers=headers).json()
    assert "resultScore" not in result


def test_line_items_are_listed_created_and_read(client: TestClient) -> None:
    headers = bearer(client, LINEITEM)
    listed = client.get("/demo-platform/services/2/lineitems?type_id=1", headers=headers)
    assert listed.status_code == 200
    (activity_item,) = listed.json()
    assert activity_item["resourceLinkId"] == "1" and activity_item["scoreMaximum"] == 100
    created = client.post(
        "/demo-platform/services/2/lineitems?type_id=1",
        json={"label": "Project", "scoreMaximum": 5, "tag": "project", "resourceLinkId": "1"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] == BASE + "/demo-platform/services/2/lineitems/2/lineitem?type_id=1"
    by_tag = client.get("/demo-platform/services/2/lineitems?tag=project", headers=headers)
    assert [item["label"] for item in by_tag.json()] == ["Project"]
    read = client.get("/demo-platform/services/2/lineitems/2/lineitem", headers=headers)
    assert read.json()["scoreMaximum"] == 5
    missing = client.get("/demo-platform/services/2/lineitems/9/lineitem", headers=headers)
    assert missing.status_code == 404
    other_course = client.get("/demo-platform/services/3/lineitems", headers=headers)
    assert other_course.status_code == 404
    nameless = client.post(
        "/demo-platform/services/2/lineitems", json={"scoreMaximum": 5}, headers=headers
    )
    assert nameless.status_code == 400


# --- NRPS and the gradebook page -------------------------------------------------------------------


def test_memberships_list_the_course_with_short_roles(client: TestClient) -> None:
    response = client.get(
        "/demo-platform/services/CourseSection/2/bindings/1/memberships",
        headers=bearer(client, NRPS_SCOPE),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["context"]["id"] == "2"
    roles = {member["user_id"]: member["roles"] for member in body["members"]}
    assert roles["3"] == ["Learner"] and roles["10"] == ["Instructor"]
    assert len(body["members"]) == len(platform_of(client).people)


def test_the_gradebook_page_shows_rescaled_grades(client: TestClient) -> None:
    headers = bearer(client, SCORE)
    client.post(LINE_ITEM_PATH + "/scores", json=score("4", given=9, maximum=10), headers=headers)
    page = client.get("/demo-platform/gradebook")
    assert page.status_code == 200
    assert "Ben Brown" in page.text and ">90<" in page.text.replace("\n", "")
    home = client.get("/demo-platform/")
    assert "/demo-platform/gradebook" in home.text


def test_every_supported_scope_can_be_granted(client: TestClient) -> None:
    response = token_request(client, list(SUPPORTED_SCOPES))
    assert set(response.json()["scope"].split()) == set(SUPPORTED_SCOPES)


def test_the_legacy_outcomes_service_says_to_use_ags(client: TestClient) -> None:
    response = client.post("/demo-platform/services/outcomes", content=b"<xml/>")
    assert response.status_code == 501
    assert "Assignment and Grade Services" in response.json()["error_description"]
