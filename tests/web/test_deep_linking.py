"""Deep linking end to end through the app: Moodle-shaped request, picker, signed response.

The response JWT is verified the way the platform does it: with the tool's public JWKS
(``/.well-known/jwks.json``), RS256, and the claims of LTI Deep Linking 2.0 §4.5.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.catalogue import BindingMethod
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import AuditRecord, DesignBinding, DesignDeepLink
from adaptive_lti.services import design_bindings, design_publishing
from tests.design_samples import (
    INTRO_V1,
    INTRO_WITH_WARNING,
    MOODLE_DEEP_LINKING_SETTINGS,
    NOW,
    UNGRADED,
    by,
    launch_context,
    tenant,
)
from tests.lti.harness import LtiHarness, harness, token_of
from tests.lti.scripted_platform import CLIENT_ID, INSTRUCTOR, ISSUER, LAUNCH_URL, LTI

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SETTINGS_CLAIM = DL + "deep_linking_settings"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
Claims = dict[str, Any]


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def publish(h: LtiHarness, *sources: str) -> None:
    with transaction(h.session_factory) as session:
        for index, source in enumerate(sources):
            design_publishing.publish_design(
                session, tenant(session), source, f"design-{index}.yaml", by("designer"), now=NOW
            )


def moodle_deep_linking(settings: dict[str, Any] | None = None, *, role: str = INSTRUCTOR) -> Any:
    """Turn the scripted platform's launch into Moodle 4.5's teacher deep-linking request."""

    def mutate(claims: Claims) -> None:
        claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
        claims.pop(LTI + "resource_link")
        claims.pop("https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome")
        claims[LTI + "roles"] = [role]
        claims[LTI + "launch_presentation"] = {"locale": "en"}
        # Moodle's deep-linking AGS claim has the container and no lineitem.
        claims[AGS_CLAIM] = {
            "lineitems": f"{ISSUER}/mod/lti/services.php/2/lineitems?type_id=1",
            "scope": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            ],
        }
        claims[SETTINGS_CLAIM] = dict(settings or MOODLE_DEEP_LINKING_SETTINGS)

    return mutate


def open_picker(h: LtiHarness, settings: dict[str, Any] | None = None) -> str:
    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=moodle_deep_linking(settings))
    assert response.status_code == 200, response.text
    return response.text


def choose(h: LtiHarness, token: str, **fields: str) -> httpx.Response:
    return h.client.post("/lti/deep-linking/select", data={"tool_session": token, **fields})


def returned_form(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    action = re.search(r'<form method="post" action="([^"]+)"', response.text)
    token = re.search(r'name="JWT" value="([^"]+)"', response.text)
    assert action and token
    return action.group(1).replace("&amp;", "&"), token.group(1)


def offers(h: LtiHarness) -> list[tuple[str, int | None, str | None, str, bool]]:
    """The deep-linking choices stored: (design, pinned version, course, by whom, used)."""
    with h.session_factory() as session:
        rows = session.scalars(select(DesignDeepLink).order_by(DesignDeepLink.id)).all()
        return [
            (row.design_id, row.pinned_version, row.context_id, row.created_by, bool(row.used_at))
            for row in rows
        ]


def bindings(h: LtiHarness) -> list[tuple[str, str | None, str, int | None, str]]:
    """The bindings stored: (resource link, course, design, pinned version, method)."""
    with h.session_factory() as session:
        rows = session.scalars(select(DesignBinding).order_by(DesignBinding.id)).all()
        return [
            (row.resource_link_id, row.context_id, row.design_id, row.pinned_version, row.method)
            for row in rows
        ]


def assert_nothing_returned_or_written(h: LtiHarness, response: httpx.Response) -> None:
    assert 'name="JWT"' not in response.text, "a refused choice returned a signed response"
    assert h.unchanged_since_mark(), "a refused choice changed the database"


def verify_with_tool_jwks(h: LtiHarness, token: str) -> Claims:
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"]
    keys = h.client.get("/.well-known/jwks.json").json()["keys"]
    [jwk] = [key for key in keys if key["kid"] == header["kid"]]
    public_key = jwt.PyJWK(jwk).key
    claims: Claims = jwt.decode(
        token,
        public_key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=CLIENT_ID,
        options={"require": ["exp", "iat", "nonce"], "verify_iat": False, "verify_exp": False},
    )
    return claims


def test_an_instructor_sees_the_designs_with_their_lint_status(h: LtiHarness) -> None:
    publish(h, INTRO_V1, INTRO_WITH_WARNING.replace("version: 1", "version: 2"), UNGRADED)
    page = open_picker(h)
    assert "Choose the design for this activity" in page
    assert "Introduction to Programming" in page and "Reading club" in page
    assert "No errors, 1 warning" in page
    assert "attribute &#39;goal&#39; is never used" in page
    assert "Checked: no errors, no warnings" in page
    assert 'action="http://testserver/lti/deep-linking/select"' in page


def test_the_response_is_signed_and_carries_exactly_the_spec_claims(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    return_url, response_jwt = returned_form(choose(h, token, design="sample-programming"))
    assert return_url == MOODLE_DEEP_LINKING_SETTINGS["deep_link_return_url"]
    claims = verify_with_tool_jwks(h, response_jwt)
    assert claims["iss"] == CLIENT_ID
    assert claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["iat"] == int(h.clock.now.timestamp())
    assert len(claims["nonce"]) >= 22
    assert claims[LTI + "deployment_id"] == "1"
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "version"] == "1.3.0"
    assert DL + "data" not in claims  # Moodle sent none
    assert claims[DL + "content_items"] == [
        {
            "type": "ltiResourceLink",
            "title": "Introduction to Programming",
            "url": LAUNCH_URL,
            "custom": {"design": "sample-programming"},
            "lineItem": {
                "scoreMaximum": 100,
                "label": "Introduction to Programming",
                "resourceId": "sample-programming",
            },
        }
    ]
    assert "Introduction to Programming" in claims[DL + "msg"]
    assert set(claims) == {
        "iss",
        "aud",
        "iat",
        "exp",
        "nonce",
        LTI + "deployment_id",
        LTI + "message_type",
        LTI + "version",
        DL + "content_items",
        DL + "msg",
        DL + "log",
    }
    # The choice waits for the activity's first launch, by whom it was made, and is audited.
    assert offers(h) == [("sample-programming", None, "2", "Teacher One (user 4)", False)]
    with h.session_factory() as session:
        [audit] = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "binding.deep-link")
        ).all()
    assert (audit.actor_subject, audit.actor_name) == ("4", "Teacher One")
    assert audit.details["design"] == "sample-programming" and audit.registration_id is not None


def test_two_responses_have_different_nonces(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    first = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming"))[1]
    )
    second = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming"))[1]
    )
    assert first["nonce"] != second["nonce"]


def test_data_is_echoed_when_the_platform_sends_it(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    settings = {**MOODLE_DEEP_LINKING_SETTINGS, "data": "opaque-csrf-token-42"}
    token = token_of(open_picker(h, settings))
    claims = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming"))[1]
    )
    assert claims[DL + "data"] == "opaque-csrf-token-42"


def test_no_line_item_without_the_lineitem_scope_or_without_a_grade(h: LtiHarness) -> None:
    publish(h, INTRO_V1, UNGRADED)
    token = token_of(open_picker(h))
    ungraded = verify_with_tool_jwks(h, returned_form(choose(h, token, design="reading-club"))[1])
    assert "lineItem" not in ungraded[DL + "content_items"][0]

    def no_lineitem_scope(claims: Claims) -> None:
        moodle_deep_linking()(claims)
        claims[AGS_CLAIM]["scope"] = ["https://purl.imsglobal.org/spec/lti-ags/scope/score"]

    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=no_lineitem_scope)
    graded = verify_with_tool_jwks(
        h,
        returned_form(choose(h, token_of(response.text), design="sample-programming"))[1],
    )
    assert "lineItem" not in graded[DL + "content_items"][0]


def test_pinning_returns_the_current_version(h: LtiHarness) -> None:
    publish(h, INTRO_V1, INTRO_V1.replace("version: 1", "version: 2"))
    token = token_of(open_picker(h))
    claims = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming", pin="1"))[1]
    )
    assert claims[DL + "content_items"][0]["custom"] == {"design": "sample-programming@2"}
    assert offers(h) == [("sample-programming", 2, "2", "Teacher One (user 4)", False)]


def test_cancelling_returns_no_items(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    h.mark()
    claims = verify_with_tool_jwks(h, returned_form(choose(h, token, action="cancel"))[1])
    assert claims[DL + "content_items"] == []
    assert "No design was added" in claims[DL + "msg"]
    assert h.unchanged_since_mark()


def test_an_empty_catalogue_says_how_to_publish_and_can_still_return(h: LtiHarness) -> None:
    page = open_picker(h)
    assert "adaptive-lti design publish FILE.yaml" in page
    claims = verify_with_tool_jwks(h, returned_form(choose(h, token_of(page), action="cancel"))[1])
    assert claims[DL + "content_items"] == []


def test_the_deep_linked_activity_is_bound_on_its_first_launch(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    claims = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming"))[1]
    )
    custom = claims[DL + "content_items"][0]["custom"]

    # Moodle creates the activity with the returned custom parameters; a student launches it.
    def activity_launch(launch_claims: Claims) -> None:
        launch_claims[LTI + "custom"].update(custom)

    response = h.full_launch(mutate=activity_launch)
    assert response.status_code == 200, response.text
    with transaction(h.session_factory) as session:
        launch = launch_context(custom=custom)
        found = design_bindings.design_for_launch(session, launch, now=NOW)
    assert found is not None
    assert found.binding.method is BindingMethod.deep_link
    assert found.binding.bound_by == "Teacher One (user 4)"
    assert bindings(h) == [("1", "2", "sample-programming", None, "deep-link")]
    assert offers(h) == [("sample-programming", None, "2", "Teacher One (user 4)", True)]


def test_only_instructors_may_deep_link(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    learner = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
    response = h.full_launch(subject="3", mutate=moodle_deep_linking(role=learner), json=True)
    assert response.status_code == 403
    assert "Only the course's instructors" in response.json()["message"]


def test_a_learner_session_cannot_post_a_choice(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    learner_page = h.full_launch()
    assert learner_page.status_code == 200
    found = re.search(r'name="tool_session" value="([^"]+)"', learner_page.text)
    token = found.group(1) if found else h.client.cookies.get("adaptive_lti_session") or ""
    h.mark()
    response = choose(h, token, design="sample-programming")
    assert response.status_code == 403
    assert_nothing_returned_or_written(h, response)


def test_an_instructor_session_from_an_activity_launch_cannot_deep_link(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    page = h.full_launch(role=INSTRUCTOR, subject="4")
    assert page.status_code == 200
    h.mark()
    response = choose(h, token_of(page.text), design="sample-programming")
    assert response.status_code == 400
    assert "did not start with a deep linking request" in response.text
    assert_nothing_returned_or_written(h, response)


def test_a_choice_without_a_session_is_refused(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    h.client.cookies.clear()
    h.mark()
    response = h.client.post("/lti/deep-linking/select", data={"design": "sample-programming"})
    assert response.status_code == 403
    assert_nothing_returned_or_written(h, response)


def test_unknown_design_or_no_design_chosen_is_a_clear_error(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    h.mark()
    unknown = choose(h, token, design="not-published")
    assert unknown.status_code == 404
    assert "design publish" in unknown.text
    assert_nothing_returned_or_written(h, unknown)
    nothing = choose(h, token)
    assert nothing.status_code == 422
    assert_nothing_returned_or_written(h, nothing)


@pytest.mark.parametrize(
    "settings",
    [
        {**MOODLE_DEEP_LINKING_SETTINGS, "accept_types": ["html", "link"]},
        {**MOODLE_DEEP_LINKING_SETTINGS, "deep_link_return_url": "javascript:alert(1)"},
    ],
)
def test_unusable_settings_are_refused_with_400(h: LtiHarness, settings: dict[str, Any]) -> None:
    publish(h, INTRO_V1)
    response = h.full_launch(
        role=INSTRUCTOR, subject="4", mutate=moodle_deep_linking(settings), json=True
    )
    assert response.status_code == 400
    body = response.json()
    assert body["check"] == "deep linking settings"
    assert body["hint"]


def test_the_teacher_opening_the_new_activity_first_binds_it_too(h: LtiHarness) -> None:
    publish(h, INTRO_V1)
    token = token_of(open_picker(h))
    claims = verify_with_tool_jwks(
        h, returned_form(choose(h, token, design="sample-programming"))[1]
    )
    custom = claims[DL + "content_items"][0]["custom"]

    def activity_launch(launch_claims: Claims) -> None:
        launch_claims[LTI + "custom"].update(custom)

    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=activity_launch)
    assert response.status_code == 200, response.text
    with h.session_factory() as session:
        [binding] = session.scalars(select(DesignBinding)).all()
    assert binding.method == BindingMethod.deep_link.value
    assert binding.bound_by == "Teacher One (user 4)"
    assert bindings(h) == [("1", "2", "sample-programming", None, "deep-link")]
    assert offers(h) == [("sample-programming", None, "2", "Teacher One (user 4)", True)]


def test_an_unpublished_design_does_not_keep_the_teacher_out(h: LtiHarness) -> None:
    def activity_launch(launch_claims: Claims) -> None:
        launch_claims[LTI + "custom"]["design"] = "not-published"

    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=activity_launch)
    assert response.status_code == 200, response.text
    assert "/static/teaching.js" in response.text  # the instructor's course page
    assert bindings(h) == [] and offers(h) == []
