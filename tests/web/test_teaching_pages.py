"""The instructor's pages through the app with real launches (SQLite and PostgreSQL): who may
open them (the instructor's tool session in the request itself, never a cookie alone), the
activity's page after an instructor launch, the roster sync against a Moodle-shaped platform,
the learner's page with the trace, the teacher's controls, and route counts."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import LearnerEnrolment, LearnerEvent, RosterMember
from adaptive_lti.lti import keys
from tests.design_samples import NOW, publish_example
from tests.lti.fake_platform import FakePlatform
from tests.lti.harness import LtiHarness, harness, token_of
from tests.lti.scripted_platform import INSTRUCTOR, LTI


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        publish_example(lti.session_factory, now=NOW)
        yield lti


def with_design(claims: dict[str, Any]) -> None:
    claims[LTI + "custom"]["design"] = "intro-programming"


def instructor_page(h: LtiHarness) -> httpx.Response:
    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=with_design)
    assert response.status_code == 200, response.text
    return response


def learner_launch(h: LtiHarness, subject: str = "3") -> None:
    response = h.full_launch(subject=subject, mutate=with_design)
    assert response.status_code == 200, response.text


def enrolment_id(h: LtiHarness) -> int:
    with h.session_factory() as session:
        found = session.scalar(select(LearnerEnrolment.id))
    assert found is not None
    return found


def count(h: LtiHarness, table: type[Any]) -> int:
    with h.session_factory() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_an_instructor_launch_shows_the_activity_page(h: LtiHarness) -> None:
    learner_launch(h)
    page = instructor_page(h)
    text = html.unescape(page.text)
    assert "Learners and where they are" in text
    assert "intro-programming" in text and "version 1" in text
    assert "Student One" in text
    # Student One launched with prior_programming=none: the intake asks for the goal.
    assert "Answering the questions of Welcome" in text
    assert "Sync the roster from the platform" in text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    link = f"/teaching/learners/{enrolment_id(h)}?tool_session="
    assert link in text


def test_the_pages_need_the_instructor_session_in_the_request(h: LtiHarness) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    assert h.client.get("/teaching/", params={"tool_session": token}).status_code == 200
    assert h.client.get("/teaching/", headers={"X-Tool-Session": token}).status_code == 200
    # The launch left the session cookie in this client: alone, it opens nothing here.
    assert h.client.cookies.get("adaptive_lti_session")
    refused = h.client.get("/teaching/")
    assert refused.status_code == 403 and "no tool session came with the request" in refused.text
    posted = h.client.post(f"/teaching/learners/{enrolment_id(h)}/reset", data={"reason": "x"})
    assert posted.status_code == 403
    altered = h.client.get("/teaching/", params={"tool_session": token[:-3] + "abc"})
    assert altered.status_code == 403


def test_a_learner_session_cannot_open_the_instructor_pages(h: LtiHarness) -> None:
    response = h.full_launch(subject="3", mutate=with_design)
    learner_token = token_of(response.text)
    for path in ("/teaching/", "/teaching/routes", f"/teaching/learners/{enrolment_id(h)}"):
        refused = h.client.get(path, params={"tool_session": learner_token})
        assert refused.status_code == 403, path
        assert "for the course's instructors" in html.unescape(refused.text)
    refused = h.client.post(
        f"/teaching/learners/{enrolment_id(h)}/move",
        data={"tool_session": learner_token, "target": "route:standard", "reason": "me"},
    )
    assert refused.status_code == 403


def test_the_learner_page_shows_the_trace_and_the_controls(h: LtiHarness) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    page = h.client.get(f"/teaching/learners/{enrolment_id(h)}", params={"tool_session": token})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Decision trace" in text and "Launched the activity" in text
    assert "prior_programming" in text and "Move the learner" in text
    assert 'value="route:foundations"' in text and 'value="activity:loops-check"' in text
    assert "Why (required)" in text


def test_moving_a_learner_records_who_and_why_and_comes_back(h: LtiHarness) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    learner = enrolment_id(h)
    moved = h.client.post(
        f"/teaching/learners/{learner}/move",
        data={"tool_session": token, "target": "activity:loops-lesson", "reason": "knows it"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert moved.headers["location"].startswith(f"http://testserver/teaching/learners/{learner}?")
    page = h.client.get(moved.headers["location"])
    text = html.unescape(page.text)
    assert "the learner was moved" in text and "Loops (sent by an instructor)" in text
    assert "Moved to Loops by Teacher One (user 4): knows it" in text
    with h.session_factory() as session:
        actor = session.scalar(
            select(LearnerEvent.actor)
            .where(LearnerEvent.event_type == "overridden")
            .order_by(LearnerEvent.id.desc())
        )
    assert actor == "Teacher One (user 4)"

    reset = h.client.post(
        f"/teaching/learners/{learner}/reset",
        data={"tool_session": token, "reason": "new term"},
        follow_redirects=True,
    )
    assert reset.status_code == 200 and "progress was reset" in reset.text


@pytest.mark.parametrize(
    ("path", "data", "status", "message"),
    [
        ("move", {"target": "route:standard", "reason": ""}, 422, "Say why"),
        ("move", {"target": "route:elsewhere", "reason": "x"}, 422, "not a route or an activity"),
        ("move", {"reason": "x"}, 422, "target"),
        ("reset", {"reason": "  "}, 422, "Say why"),
    ],
)
def test_refused_controls_explain_and_change_nothing(
    h: LtiHarness, path: str, data: dict[str, str], status: int, message: str
) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    before = count(h, LearnerEvent)
    response = h.client.post(
        f"/teaching/learners/{enrolment_id(h)}/{path}", data={"tool_session": token, **data}
    )
    assert response.status_code == status
    assert message in html.unescape(response.text)
    assert count(h, LearnerEvent) == before


def test_unknown_learners_are_not_found(h: LtiHarness) -> None:
    token = token_of(instructor_page(h).text)
    for url in (
        "/teaching/learners/999999",
        "/teaching/learners/not-a-number",
        "/teaching/learners/99999999999999999999999",
        "/teaching/learners/-1",
    ):
        response = h.client.get(url, params={"tool_session": token})
        assert response.status_code in {404, 422}, url
        assert "Traceback" not in response.text


def test_roster_sync_lists_members_who_never_launched(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        keys.ensure_signing_key(session, h.app.state.settings, NOW)
        tool_key = keys.signing_key(session)
    moodle = FakePlatform(tool_public_key=tool_key.private_key.public_key())
    jwks = h.app.state.http_transport

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/certs.php"):
            return jwks.handle_request(request)
        return moodle.handle(request)

    h.app.state.http_transport = httpx.MockTransport(route)
    token = token_of(instructor_page(h).text)
    page = h.client.post("/teaching/roster/sync", data={"tool_session": token})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Roster synced: the platform listed" in text
    assert count(h, RosterMember) == len(moodle.members)
    assert "Never launched the activity" in text


def test_a_failed_roster_sync_says_so_and_changes_nothing(h: LtiHarness) -> None:
    jwks = h.app.state.http_transport

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/certs.php"):
            return jwks.handle_request(request)
        return httpx.Response(503, text="Moodle is in maintenance mode")

    h.app.state.http_transport = httpx.MockTransport(route)
    token = token_of(instructor_page(h).text)
    page = h.client.post("/teaching/roster/sync", data={"tool_session": token})
    assert page.status_code == 502
    text = html.unescape(page.text)
    assert "The roster could not be read" in text and "Nothing was changed." in text
    assert count(h, RosterMember) == 0


def test_route_counts_page(h: LtiHarness) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    page = h.client.get("/teaching/routes", params={"tool_session": token})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Who took which route" in text and "Branch at route[2]" in text
    assert "Choice 'elective'" in text and "fast track" in text and "not decided yet" in text


@pytest.mark.parametrize(
    "fields",
    [
        {"target": "route:" + "x" * 5000, "reason": "why"},
        {"target": "route:standard", "reason": "y" * 5000},
        {"target": "activity:loops-check\x00", "reason": "nul"},
        {"target": "route:standard", "reason": "\u202e\u0000 <script>alert(1)</script>"},
        {"target": ":", "reason": "colon only"},
    ],
)
def test_hostile_control_fields_never_give_a_500(h: LtiHarness, fields: dict[str, str]) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    before = count(h, LearnerEvent)
    response = h.client.post(
        f"/teaching/learners/{enrolment_id(h)}/move",
        data={"tool_session": token, **fields},
        follow_redirects=False,
    )
    assert response.status_code in {303, 422}, response.text
    assert "<script>alert(1)</script>" not in response.text
    if response.status_code == 422:
        assert count(h, LearnerEvent) == before
    else:  # a strange but valid reason is kept as text, escaped wherever it is shown
        page = h.client.get(response.headers["location"])
        assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
