"""The instructor's actions through the app leave one audit record each, naming the platform
user who acted (their ``sub`` and name) and the registration; refused or failed actions leave
none (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import ConflictError
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import AuditRecord, LearnerEnrolment
from adaptive_lti.lti import keys
from tests.design_samples import NOW, intro, publish_example
from tests.lti.fake_platform import FakePlatform
from tests.lti.harness import LtiHarness, harness
from tests.web.test_teaching_pages import (
    enrolment_id,
    instructor_page,
    learner_launch,
    token_of,
)

TEACHER = ("4", "Teacher One")


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        publish_example(lti.session_factory, now=NOW)
        yield lti


def records(h: LtiHarness, *actions: str) -> list[AuditRecord]:
    with h.session_factory() as session:
        query = select(AuditRecord).order_by(AuditRecord.id)
        if actions:
            query = query.where(AuditRecord.action.in_(actions))
        return list(session.scalars(query))


def registration_of(h: LtiHarness) -> int:
    with h.session_factory() as session:
        found = session.scalar(select(LearnerEnrolment.registration_id))
    assert found is not None
    return found


def test_moving_and_resetting_a_learner_are_recorded(h: LtiHarness) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    learner = enrolment_id(h)
    for path, data in (
        ("move", {"target": "activity:loops-lesson", "reason": "knows it"}),
        ("reset", {"reason": "new term"}),
    ):
        response = h.client.post(
            f"/teaching/learners/{learner}/{path}",
            data={"tool_session": token, **data},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
    moved, reset = records(h, "learner.move", "learner.reset")
    for record in (moved, reset):
        assert (record.actor_subject, record.actor_name) == TEACHER
        assert record.registration_id == registration_of(h)
        assert record.target == f"enrolment {learner} (user 3)"
    assert moved.details == {
        "enrolment_id": learner,
        "user_sub": "3",
        "design": "intro-programming@1",
        "to": "activity:loops-lesson",
        "reason": "knows it",
    }
    assert reset.details["reason"] == "new term" and "to" not in reset.details
    assert moved.occurred_at <= reset.occurred_at


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("move", {"target": "route:standard", "reason": ""}),
        ("move", {"target": "route:elsewhere", "reason": "x"}),
        ("reset", {"reason": " "}),
    ],
)
def test_refused_controls_leave_no_record(h: LtiHarness, path: str, data: dict[str, str]) -> None:
    learner_launch(h)
    token = token_of(instructor_page(h).text)
    h.mark()
    response = h.client.post(
        f"/teaching/learners/{enrolment_id(h)}/{path}", data={"tool_session": token, **data}
    )
    assert response.status_code == 422
    assert h.unchanged_since_mark()


def _platform_answers(h: LtiHarness, answer: Any) -> None:
    jwks = h.app.state.http_transport

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/certs.php"):
            return jwks.handle_request(request)
        response: httpx.Response = answer(request)
        return response

    h.app.state.http_transport = httpx.MockTransport(route)


def test_a_roster_sync_is_recorded_with_what_it_changed(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        keys.ensure_signing_key(session, h.app.state.settings, NOW)
        tool_key = keys.signing_key(session)
    moodle = FakePlatform(tool_public_key=tool_key.private_key.public_key())
    _platform_answers(h, moodle.handle)
    token = token_of(instructor_page(h).text)
    assert h.client.post("/teaching/roster/sync", data={"tool_session": token}).status_code == 200
    [record] = records(h, "roster.sync")
    assert (record.actor_subject, record.actor_name) == TEACHER
    assert record.target.startswith("course ")
    assert record.details == {
        "added": len(moodle.members),
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
    }


def test_a_failed_roster_sync_leaves_no_record(h: LtiHarness) -> None:
    _platform_answers(h, lambda request: httpx.Response(503, text="maintenance"))
    token = token_of(instructor_page(h).text)
    assert h.client.post("/teaching/roster/sync", data={"tool_session": token}).status_code == 502
    assert records(h, "roster.sync") == []


def test_publishing_and_binding_on_the_designs_page_are_recorded(h: LtiHarness) -> None:
    token = token_of(instructor_page(h).text)
    published = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "source_text": intro(1), "filename": "intro.yaml"},
    )
    assert published.status_code == 200, published.text
    assert "Published sample-programming version 1" in html.unescape(published.text)
    bound = h.client.post(
        "/lti/designs/bind", data={"tool_session": token, "design": "sample-programming"}
    )
    assert bound.status_code == 200, bound.text
    publish, bind = records(h, "design.publish", "binding.instructor")[-2:]
    assert (publish.action, publish.target, publish.registration_id) == (
        "design.publish",
        "sample-programming@1",
        bind.registration_id,
    )
    assert (publish.actor_subject, publish.actor_name) == TEACHER
    assert "Teacher One (user 4" in publish.details["published_by"]
    assert (bind.actor_subject, bind.actor_name) == TEACHER
    assert bind.action == "binding.instructor" and bind.target == "resource link 1"
    assert bind.details["design"] == "sample-programming" and bind.registration_id is not None

    # Publishing the same content again changes nothing and records nothing.
    h.mark()
    again = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "source_text": intro(1), "filename": "intro.yaml"},
    )
    assert again.status_code == 200 and "nothing changed" in again.text
    assert h.unchanged_since_mark()


def test_an_action_that_fails_after_its_record_was_written_leaves_neither(
    h: LtiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding writes its record first, then the binding: when storing the binding fails, the
    request's transaction takes the record back too."""
    token = token_of(instructor_page(h).text)

    def failing_set_binding(*_args: Any, **_kwargs: Any) -> None:
        raise ConflictError("the binding could not be stored", hint="Try again.")

    monkeypatch.setattr(
        "adaptive_lti.services.design_bindings.designs_repo.set_binding", failing_set_binding
    )
    h.mark()
    response = h.client.post(
        "/lti/designs/bind", data={"tool_session": token, "design": "intro-programming"}
    )
    assert response.status_code == 409, response.text
    assert h.unchanged_since_mark()
