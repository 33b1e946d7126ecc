"""Launches that must succeed (certification's valid cases, Moodle 4.5 shapes), what they
record and show, the tool session that follows, and malformed input that must never be a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.lti import Person
from adaptive_lti.db.tables import Context, Launch, User
from adaptive_lti.web.routes.lti import html_lang
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import INSTRUCTOR, LEARNER, LTI

Claims = dict[str, Any]
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def latest_launch(h: LtiHarness) -> Launch:
    with h.session_factory() as session:
        launch = session.scalars(select(Launch).order_by(Launch.id.desc())).first()
        assert launch is not None
        return launch


def latest_user(h: LtiHarness) -> User:
    with h.session_factory() as session:
        user = session.scalars(select(User).order_by(User.id.desc())).first()
        assert user is not None
        return user


def remove(*names: str) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        for name in names:
            claims.pop(name, None)

    return mutate


def roles(*values: str) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        claims[LTI + "roles"] = list(values)

    return mutate


NAMES = ("name", "given_name", "family_name")


# -- certification's valid teacher and student launches --------------------------------------

# (role sent, change to the claims, what the tool must record: the launch's short roles, whether
# it teaches, the user's display name, and whether a course was recorded).
VALID_CASES: dict[
    str, tuple[str, Callable[[Claims], None] | None, tuple[str, ...], bool, str, bool]
] = {
    "student plain": (LEARNER, None, ("Learner",), False, "Student One", True),
    "teacher plain": (INSTRUCTOR, None, ("Instructor",), True, "Teacher One", True),
    "student multiple roles": (
        LEARNER,
        roles(MEMBERSHIP + "Learner", MEMBERSHIP + "Mentor"),
        ("Learner", "Mentor"),
        False,
        "Student One",
        True,
    ),
    "teacher multiple roles": (
        INSTRUCTOR,
        roles(MEMBERSHIP + "Instructor", TA, MEMBERSHIP + "ContentDeveloper"),
        ("Instructor", "TeachingAssistant", "ContentDeveloper"),
        True,
        "Teacher One",
        True,
    ),
    "student short role": (LEARNER, roles("Learner"), ("Learner",), False, "Student One", True),
    "teacher short role": (
        INSTRUCTOR,
        roles("Instructor"),
        ("Instructor",),
        True,
        "Teacher One",
        True,
    ),
    "student unknown role": (
        LEARNER,
        roles("http://example.com/role#Wizard"),
        ("http://example.com/role#Wizard",),
        False,
        "Student One",
        True,
    ),
    "teacher unknown role": (
        INSTRUCTOR,
        roles(MEMBERSHIP + "Instructor", "urn:vendor:SuperTeacher"),
        ("Instructor", "urn:vendor:SuperTeacher"),
        True,
        "Teacher One",
        True,
    ),
    "student no role": (LEARNER, roles(), (), False, "Student One", True),
    "teacher no role": (INSTRUCTOR, roles(), (), False, "Teacher One", True),
    "student email only": (
        LEARNER,
        remove(*NAMES),
        ("Learner",),
        False,
        "student1@example.com",
        True,
    ),
    "teacher email only": (
        INSTRUCTOR,
        remove(*NAMES),
        ("Instructor",),
        True,
        "teacher1@example.com",
        True,
    ),
    "student names only": (LEARNER, remove("email"), ("Learner",), False, "Student One", True),
    "teacher names only": (
        INSTRUCTOR,
        remove("email"),
        ("Instructor",),
        True,
        "Teacher One",
        True,
    ),
    "student no personal data": (
        LEARNER,
        remove(*NAMES, "email"),
        ("Learner",),
        False,
        "User 3",
        True,
    ),
    "teacher no personal data": (
        INSTRUCTOR,
        remove(*NAMES, "email"),
        ("Instructor",),
        True,
        "User 3",
        True,
    ),
    "student email without context": (
        LEARNER,
        remove(*NAMES, LTI + "context"),
        ("Learner",),
        False,
        "student1@example.com",
        False,
    ),
    "teacher email without context": (
        INSTRUCTOR,
        remove(*NAMES, LTI + "context"),
        ("Instructor",),
        True,
        "teacher1@example.com",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(VALID_CASES))
def test_certification_valid_launch_is_accepted(h: LtiHarness, case: str) -> None:
    role, mutate, short_roles, teaching, display_name, with_course = VALID_CASES[case]
    response = h.full_launch(role=role, mutate=mutate, subject="3")
    assert response.status_code == 200, response.text
    counts = h.counts()
    assert counts["lti_launch"] == 1 and counts["lti_user"] == 1
    assert counts["lti_context"] == (1 if with_course else 0)
    assert counts["lti_login_state"] == 0  # the login was used up
    assert tuple(latest_launch(h).roles_short) == short_roles
    user = latest_user(h)
    person = Person(user.subject, user.given_name, user.family_name, user.name, user.email)
    assert person.display_name == display_name
    # The tool session bound to the launch says who this is and whether they teach.
    session = h.client.get("/lti/session").json()
    assert session["is_instructor"] is teaching and tuple(session["roles"]) == short_roles


def test_roles_are_kept_in_full_and_short_forms_unknown_ones_too(h: LtiHarness) -> None:
    mutate = roles("Instructor", TA, "urn:lti:role:ims/lis/Learner", "http://x.example/r#Odd")
    assert h.full_launch(role=INSTRUCTOR, mutate=mutate).status_code == 200
    launch = latest_launch(h)
    assert launch.roles == [
        MEMBERSHIP + "Instructor",
        TA,
        MEMBERSHIP + "Learner",
        "http://x.example/r#Odd",
    ]
    assert launch.roles_short == [
        "Instructor",
        "TeachingAssistant",
        "Learner",
        "http://x.example/r#Odd",
    ]


def test_unknown_claims_are_ignored_and_custom_values_become_strings(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims["https://vendor.example/claim/extra"] = {"anything": [1, 2, 3]}
        claims[LTI + "custom"] = {"level": 3, "flag": True, "text": "x"}

    assert h.full_launch(mutate=mutate).status_code == 200
    assert latest_launch(h).custom == {"level": "3", "flag": "true", "text": "x"}


# -- Moodle 4.5 shapes -----------------------------------------------------------------------


def test_moodle_student_launch_records_everything(h: LtiHarness) -> None:
    response = h.full_launch()
    assert response.status_code == 200
    launch = latest_launch(h)
    assert launch.message_type == "LtiResourceLinkRequest"
    assert launch.custom["user_sis"] == "SIS-student1"
    assert launch.ext == {"lms": "moodle-2", "user_username": "student1"}
    assert launch.basic_outcome is not None
    assert launch.basic_outcome["lis_outcome_service_url"].endswith("/mod/lti/service.php")
    assert launch.ags_endpoint is not None and "lineitem" in launch.ags_endpoint
    assert launch.nrps is not None and "context_memberships_url" in launch.nrps
    assert launch.tool_platform is not None
    assert launch.tool_platform["product_family_code"] == "moodle"
    user = latest_user(h)
    assert (user.subject, user.email, user.username, user.person_sourcedid) == (
        "3",
        "student1@example.com",
        "student1",
        "SIS-student1",
    )
    with h.session_factory() as session:
        context = session.scalars(select(Context)).one()
    assert context.context_id == "2"
    assert context.types == ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"]


def test_moodle_locale_pt_br_sets_the_page_language(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims[LTI + "launch_presentation"]["locale"] = "pt_br"

    response = h.full_launch(mutate=mutate)
    assert response.status_code == 200
    assert latest_launch(h).locale == "pt_br"
    assert html_lang("pt_br") == "pt-BR" and html_lang("en") == "en"
    assert html_lang(None) == "en" and html_lang("x" * 20) == "en"


def test_moodle_deployment_id_one_is_keyed_per_registration(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200
    with h.session_factory() as session:
        launch = session.scalars(select(Launch)).one()
        assert launch.deployment_id is not None


def test_second_launch_updates_the_user_and_keeps_one_row(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200

    def renamed(claims: Claims) -> None:
        claims["name"] = "Student Renamed"

    assert h.full_launch(mutate=renamed).status_code == 200
    counts = h.counts()
    assert (counts["lti_user"], counts["lti_context"], counts["lti_resource_link"]) == (1, 1, 1)
    assert counts["lti_launch"] == 2
    assert latest_user(h).name == "Student Renamed"


def test_static_key_set_registration_launches(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    with harness(session_factory, db_url, static=True) as h:
        assert h.full_launch().status_code == 200
        assert h.platform.server.fetches == []  # no JWKS URL, no fetch


# -- the instructor page and the tool session -------------------------------------------------


def test_instructor_course_page_lists_recent_launches(h: LtiHarness) -> None:
    h.full_launch(subject="3")
    h.full_launch(subject="5", mutate=lambda c: c.update(name="Second Student"))
    launched = h.full_launch(role=INSTRUCTOR, subject="4")
    assert launched.status_code == 200
    assert launched.headers["cache-control"] == "no-store"
    response = h.client.get("/lti/course")  # the tool session cookie of the instructor
    assert response.status_code == 200
    text = response.text
    assert "LTI 101" in text and "Harness activity" in text
    assert "Second Student" in text and "Student One" in text and "Teacher One" in text
    assert "3 launches by 3 people so far" in text


def _session_token(h: LtiHarness) -> str:
    """The token the launch handed over (the page carries the same one in a hidden field)."""
    token = h.client.cookies.get("adaptive_lti_session")
    assert token
    return token


def test_tool_session_token_authorises_the_course_page_without_cookies(h: LtiHarness) -> None:
    assert h.full_launch(role=INSTRUCTOR, subject="4").status_code == 200
    token = _session_token(h)
    h.client.cookies.clear()  # the iframe kept no cookie: the page's token is enough
    response = h.client.post("/lti/course", data={"tool_session": token})
    assert response.status_code == 200 and "Recent launches" in response.text
    header = h.client.get("/lti/session", headers={"X-Tool-Session": token})
    assert header.status_code == 200
    assert header.json()["is_instructor"] is True and header.json()["roles"] == ["Instructor"]


def test_tool_session_cookie_works_when_the_browser_keeps_it(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200
    response = h.client.get("/lti/session")
    assert response.status_code == 200 and response.json()["roles"] == ["Learner"]


def test_learner_session_cannot_open_the_instructor_page(h: LtiHarness) -> None:
    assert h.full_launch().status_code == 200
    token = _session_token(h)
    response = h.client.post(
        "/lti/course", data={"tool_session": token}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 403
    assert "instructors" in response.json()["message"]


def test_missing_tampered_or_expired_tool_session_is_refused(h: LtiHarness) -> None:
    assert h.full_launch(role=INSTRUCTOR, subject="4").status_code == 200
    token = _session_token(h)
    h.client.cookies.clear()
    assert h.client.get("/lti/session").status_code == 403
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert h.client.get("/lti/session", headers={"X-Tool-Session": tampered}).status_code == 403
    h.clock.advance(8 * 3600 + 1)
    expired = h.client.get(
        "/lti/session", headers={"X-Tool-Session": token, "Accept": "application/json"}
    )
    assert expired.status_code == 403 and "expired" in expired.json()["message"]


def test_tool_jwks_publishes_active_keys(h: LtiHarness) -> None:
    response = h.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert {keys[0]["alg"], keys[0]["use"], keys[0]["kty"]} == {"RS256", "sig", "RSA"}
    assert keys[0]["kid"] and "d" not in keys[0]  # never the private part
    assert h.client.get("/.well-known/jwks.json").json() == response.json()  # made once


# -- malformed input never gives a 500 -------------------------------------------------------

GARBAGE_FORMS: list[dict[str, str]] = [
    {},
    {"id_token": ""},
    {"id_token": "x" * 200_000, "state": "state-x"},
    {"id_token": "....", "state": "state-" + "A" * 43},
    {"id_token": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "state": "state-x"},
    {"id_token": "e30.e30.", "state": "state-x"},
    {"id_token": "W10.W10.W10", "state": "state-x"},  # JSON arrays, not objects
    {"id_token": "\x00\xff", "state": "\u202e"},
    {"state": "state-" + "A" * 43, "id_token": "a.b.c", "lti_storage_state": "x" * 10_000},
    {"error": "x" * 100_000, "error_description": "\U0001f600" * 1000},
]


@pytest.mark.parametrize("form", GARBAGE_FORMS, ids=range(len(GARBAGE_FORMS)))
def test_garbage_launch_forms_are_refused_cleanly(h: LtiHarness, form: dict[str, str]) -> None:
    before = h.checksums()
    response = h.client.post("/lti/launch", data=form)
    assert 400 <= response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    assert h.checksums() == before


def test_garbage_claim_values_are_refused_cleanly(h: LtiHarness) -> None:
    garbage: list[Callable[[Claims], None]] = [
        lambda c: c.update(iss=["not", "a", "string"]),
        lambda c: c.update(aud={"an": "object"}),
        lambda c: c.update(exp="tomorrow"),
        lambda c: c.update(iat=None),
        lambda c: c.update(sub=12345),
        lambda c: c.update({LTI + "roles": "Instructor"}),
        lambda c: c.update({LTI + "roles": [1, 2]}),
        lambda c: c.update({LTI + "context": "course"}),
        lambda c: c.update({LTI + "custom": ["a"]}),
        lambda c: c.update({LTI + "deployment_id": 1}),
        lambda c: c.update({LTI + "deployment_id": "d" * 1000}),
        lambda c: c.update(iss="https://" + "x" * 5000),
    ]
    for mutate in garbage:
        state, nonce = h.start()
        before = h.checksums()
        claims = h.platform.claims(nonce=nonce, now=h.clock.now, mutate=mutate)
        response = h.launch(h.platform.sign(claims), state)
        assert 400 <= response.status_code < 500, response.text[:500]
        assert h.checksums() == before


def test_huge_login_values_are_refused_cleanly(h: LtiHarness) -> None:
    response = h.client.get(
        "/lti/login",
        params={"iss": "x" * 50_000, "login_hint": "y", "target_link_uri": "http://testserver/"},
    )
    assert response.status_code == 400
    response = h.client.post(
        "/lti/login",
        content=b"\xff\xfe garbage",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500


def test_about_me_page_shows_who_the_course_and_the_background(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        claims[LTI + "launch_presentation"]["locale"] = "pt_br"

    assert h.full_launch(mutate=mutate).status_code == 200
    response = h.client.get("/lti/me")  # the session cookie of the launch
    assert response.status_code == 200
    text = response.text
    assert '<html lang="pt-BR">' in text
    assert "Welcome, Student One" in text and "LTI 101" in text and "Harness activity" in text
    for shown in ("user_sis", "SIS-student1", "prior_programming", "student1", "Learner"):
        assert shown in text
    token = _session_token(h)
    h.client.cookies.clear()
    by_header = h.client.get("/lti/me", headers={"X-Tool-Session": token})
    assert by_header.status_code == 200 and "Welcome, Student One" in by_header.text
    assert h.client.get("/lti/me").status_code == 403


def test_about_me_without_personal_data_or_course(h: LtiHarness) -> None:
    def mutate(claims: Claims) -> None:
        for name in (*NAMES, "email", LTI + "context", LTI + "custom", LTI + "ext", LTI + "lis"):
            claims.pop(name, None)

    assert h.full_launch(mutate=mutate).status_code == 200
    text = h.client.get("/lti/me").text
    assert "Welcome, User 3" in text and "outside a course" in text
    assert "sent no background information" in text
