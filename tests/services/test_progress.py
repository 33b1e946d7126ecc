"""The learner journey service on SQLite and PostgreSQL: the example course's personas walked
through ``services.progress`` (launch, intake, answers, choice, grade), resume, stale pages,
the log replayed into the same snapshot, overrides and resets, outcomes from other courses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.engine import ChoiceOffered, DesignCompleted, NeedsInput, NextActivity
from adaptive_lti.core.errors import EngineError, InvalidInputError
from adaptive_lti.core.journey import JourneyView
from adaptive_lti.core.lti import LaunchContext
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.tables import LearnerEvent, ScoreOutbox
from adaptive_lti.services import design_bindings, design_publishing
from adaptive_lti.services import launch as launch_service
from adaptive_lti.services.journey import instructing, launching, learner_actions, reading
from tests.design_samples import (
    CLIENT_ID,
    INSTRUCTOR,
    ISSUER,
    NOW,
    by,
    launch_context,
    register_platform,
    tenant,
)
from tests.example_routes import FOUNDATIONS, TWO_REMEDIAL_ROUNDS_THEN_SUPPORT

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "intro-programming" / "design.yaml"


@pytest.fixture
def published(session: Session) -> None:
    published_example(session)


def published_example(session: Session) -> None:
    """The scripted platform registered and the example course published."""
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), EXAMPLE.read_text(), "design.yaml", by("tests"), now=NOW
    )


def launch(
    session: Session,
    subject: str,
    custom: dict[str, str],
    *,
    at: timedelta = timedelta(0),
    resource_link_id: str = "1",
) -> JourneyView:
    context = launch_context(
        subject=subject,
        name=f"Learner {subject}",
        custom={"design": "intro-programming", **custom},
        resource_link_id=resource_link_id,
    )
    return launch_with(session, context, NOW + at)


def launch_with(session: Session, context: LaunchContext, now) -> JourneyView:  # type: ignore[no-untyped-def]
    found = registrations_repo.lookup_registration(session, ISSUER, CLIENT_ID, "1")
    assert found is not None and found.deployment is not None
    recorded = launch_service.record_launch(
        session,
        context,
        registration_id=found.registration.id,
        deployment_pk=found.deployment.id,
        now=now,
    )
    bound = design_bindings.design_for_launch(session, context, now=now)
    assert bound is not None
    return launching.begin_or_resume(session, context, bound, recorded, now)


def answer_check(session: Session, view: JourneyView, right: int, now) -> JourneyView:  # type: ignore[no-untyped-def]
    """Answer the offered check: the first ``right`` questions right, the others wrong."""
    decision = view.decision
    assert isinstance(decision, NextActivity) and decision.activity_kind == "check", decision
    number = 0
    while True:
        question = learner_actions.current_question(view)
        if question is None:
            return view
        good = question.choices.index(question.answer)
        pick = good if number < right else (good + 1) % len(question.choices)
        view, feedback = learner_actions.answer_question(
            session,
            view.enrolment,
            decision.activity,
            question.id,
            pick,
            now,
            expected_sequence=view.event_count,
        )
        assert feedback.correct is (number < right)
        number += 1
        if feedback.check_score is not None:
            return view


def walk(
    session: Session,
    view: JourneyView,
    *,
    intake: dict[str, str],
    right: dict[str, list[int]],
    elective: str,
    now,  # type: ignore[no-untyped-def]
    stop_after: str | None = None,
) -> tuple[JourneyView, list[str]]:
    """Follow the decisions to the end (or until ``stop_after`` is done): the activities met."""
    met: list[str] = []
    for _ in range(80):
        decision = view.decision
        if isinstance(decision, DesignCompleted):
            return view, met
        if isinstance(decision, NeedsInput):
            met.append(decision.activity)
            asked = {q.attribute: intake[q.attribute] for q in decision.questions}
            view = learner_actions.submit_intake(
                session,
                view.enrolment,
                decision.activity,
                asked,
                now,
                expected_sequence=view.event_count,
            )
            continue
        if isinstance(decision, ChoiceOffered):
            met.append(f"choose:{elective}")
            view = learner_actions.make_choice(
                session,
                view.enrolment,
                decision.choice,
                [elective],
                now,
                expected_sequence=view.event_count,
            )
            continue
        assert isinstance(decision, NextActivity)
        met.append(decision.activity)
        if decision.activity_kind == "check":
            scores = right.get(decision.activity, [])
            count = scores.pop(0) if scores else 99
            view = answer_check(session, view, count, now)
        else:
            view = learner_actions.complete_activity(
                session,
                view.enrolment,
                decision.activity,
                now,
                expected_sequence=view.event_count,
            )
        if stop_after == decision.activity:
            return view, met
    raise AssertionError(f"the walk did not finish: {met}")


def test_ana_foundations_elective_project_and_final_score(
    session: Session, published: None
) -> None:
    view = launch(session, "3", {"prior_programming": "none"})
    assert isinstance(view.decision, NeedsInput)
    assert [q.attribute for q in view.decision.questions] == ["goal"]
    view, met = walk(
        session,
        view,
        intake={"goal": "interest"},
        right={"diagnostic": [1], "project": [4]},
        elective="elective-games",
        now=NOW,
    )
    assert met == [
        "welcome",
        "diagnostic",
        *FOUNDATIONS,
        "choose:elective-games",
        "elective-games",
        "project",
    ]
    decision = view.decision
    assert isinstance(decision, DesignCompleted) and decision.passed is True
    assert decision.grade == pytest.approx(0.8)
    assert decision.routes == ("foundations",)
    assert view.progress == 1.0
    scores = session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)).all()
    final = scores[-1].payload
    assert final["scoreGiven"] == pytest.approx(80.0) and final["scoreMaximum"] == 100.0
    assert (final["activityProgress"], final["gradingProgress"]) == ("Completed", "FullyGraded")
    assert scores[-1].user_sub == "3"


def test_dara_needs_help_after_two_remedial_rounds(session: Session, published: None) -> None:
    view = launch(session, "6", {"prior_programming": "none"})
    view, met = walk(
        session,
        view,
        intake={"goal": "academic"},
        right={"diagnostic": [2], "loops-check": [1, 1, 1], "project": [3]},
        elective="elective-games",
        now=NOW,
    )
    loops = met[met.index("loops-lesson") : met.index("choose:elective-games")]
    assert loops == TWO_REMEDIAL_ROUNDS_THEN_SUPPORT
    assert "needs-help" in view.decision.flags
    (summary,) = instructing.list_enrolments(
        session,
        Tenant(view.enrolment.registration_id),
        resource_link_pk=view.enrolment.resource_link_pk,
    )
    assert (
        instructing.list_enrolments(
            session,
            Tenant(view.enrolment.registration_id + 1),
            resource_link_pk=view.enrolment.resource_link_pk,
        )
        == []
    )
    assert summary.needs_help and summary.completed and summary.learner_name == "Learner 6"


def test_resume_in_a_new_launch_continues_where_the_learner_was(
    session: Session, published: None
) -> None:
    view = launch(session, "5", {"prior_programming": "some"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "academic"},
        right={"diagnostic": [4]},
        elective="elective-web",
        now=NOW,
        stop_after="conditionals-lesson",
    )
    assert isinstance(view.decision, NextActivity)
    assert view.decision.activity == "conditionals-check"
    again = launch(session, "5", {"prior_programming": "some"}, at=timedelta(hours=2))
    assert again.enrolment.id == view.enrolment.id
    assert isinstance(again.decision, NextActivity)
    assert again.decision.activity == "conditionals-check"
    assert "standard" in again.decision.explanation.learner_text


def test_stale_page_is_refused_and_nothing_is_written(session: Session, published: None) -> None:
    view = launch(session, "3", {"prior_programming": "none"})
    view = learner_actions.submit_intake(
        session,
        view.enrolment,
        "welcome",
        {"goal": "interest"},
        NOW,
        expected_sequence=view.event_count,
    )
    before = session.scalar(select(func.count()).select_from(LearnerEvent))
    with pytest.raises(reading.StalePageError):
        learner_actions.submit_intake(
            session,
            view.enrolment,
            "welcome",
            {"goal": "academic"},
            NOW,
            expected_sequence=view.event_count - 1,
        )
    assert session.scalar(select(func.count()).select_from(LearnerEvent)) == before


def test_form_errors_say_what_to_do(session: Session, published: None) -> None:
    view = launch(session, "9", {})
    assert isinstance(view.decision, NeedsInput)
    with pytest.raises(InvalidInputError, match="Please answer every question"):
        learner_actions.submit_intake(
            session,
            view.enrolment,
            "welcome",
            {"goal": "interest"},
            NOW,
            expected_sequence=view.event_count,
        )
    view = learner_actions.submit_intake(
        session,
        view.enrolment,
        "welcome",
        {"goal": "interest", "prior_programming": "some"},
        NOW,
        expected_sequence=view.event_count,
    )
    question = learner_actions.current_question(view)
    assert question is not None
    with pytest.raises(InvalidInputError, match="pick an answer"):
        learner_actions.answer_question(
            session,
            view.enrolment,
            "diagnostic",
            question.id,
            None,
            NOW,
            expected_sequence=view.event_count,
        )


def test_the_log_rebuilds_the_same_snapshot_and_trace(session: Session, published: None) -> None:
    view = launch(session, "7", {"prior_programming": "experienced"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "interest"},
        right={"diagnostic": [2]},
        elective="elective-web",
        now=NOW,
        stop_after="variables-lesson",
    )
    rebuilt = reading.rebuild_snapshot(session, view.enrolment.id, now=NOW)
    assert rebuilt.state == view.state
    assert rebuilt.decision == view.decision
    trace = instructing.decision_trace(session, view.enrolment.id)
    assert [item.sequence for item in trace.items] == list(range(view.event_count))
    routed = [item for item in trace.items if "foundations" in item.explanation.learner_text]
    assert routed, "the route decision is explained to the learner"


def test_override_and_reset_are_events_with_who_and_why(session: Session, published: None) -> None:
    view = launch(session, "4", {"prior_programming": "experienced"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "vocational"},
        right={"diagnostic": [6]},
        elective="elective-data",
        now=NOW,
        stop_after="diagnostic",
    )
    assert isinstance(view.decision, ChoiceOffered)  # fast track: straight to the electives
    moved = instructing.override(
        session, view.enrolment.id, "Irene", "route:standard", "wants the basics", NOW
    )
    assert isinstance(moved.decision, NextActivity)
    assert moved.decision.activity == "conditionals-lesson"
    with pytest.raises(EngineError):
        instructing.override(session, view.enrolment.id, "Irene", "activity:nope", "", NOW)
    again = instructing.reset(session, view.enrolment.id, "Irene", "start over", NOW)
    assert isinstance(again.decision, NextActivity)
    assert again.decision.activity == "diagnostic"  # attributes kept: no intake again
    actors = session.scalars(
        select(LearnerEvent.actor).where(LearnerEvent.actor.is_not(None))
    ).all()
    assert actors == ["Irene", "Irene"]


def test_earlier_intake_answers_are_not_asked_again_in_another_activity(
    session: Session, published: None
) -> None:
    first = launch(session, "3", {})
    learner_actions.submit_intake(
        session,
        first.enrolment,
        "welcome",
        {"goal": "interest", "prior_programming": "none"},
        NOW,
        expected_sequence=first.event_count,
    )
    other = launch(session, "3", {}, resource_link_id="2", at=timedelta(days=1))
    assert other.enrolment.id != first.enrolment.id
    assert isinstance(other.decision, NextActivity) and other.decision.activity == "diagnostic"
    assert other.state.attribute_sources["goal"] == "intake"


def test_instructor_launch_context_is_not_needed_for_the_service(session: Session) -> None:
    # The role goes into the launched event as the engine's "role" source.
    context = launch_context(roles=(INSTRUCTOR,))
    assert launching.launched_event(context, NOW).role == "instructor"


def version_two(mapping: dict[str, str]) -> str:
    text = EXAMPLE.read_text().replace("\nversion: 1\n", "\nversion: 2\n", 1)
    pairs = ", ".join(f"{old}: {new}" for old, new in mapping.items())
    return text + f"\nmigrations:\n  - from_version: 1\n    activities: {{{pairs}}}\n"


def test_a_newer_version_moves_only_learners_it_declares_a_migration_for(
    session: Session, published: None
) -> None:
    at_diagnostic = launch(session, "3", {"prior_programming": "none"})
    at_diagnostic = learner_actions.submit_intake(
        session,
        at_diagnostic.enrolment,
        "welcome",
        {"goal": "interest"},
        NOW,
        expected_sequence=at_diagnostic.event_count,
    )
    at_intake = launch(session, "4", {})
    design_publishing.publish_design(
        session,
        tenant(session),
        version_two({"diagnostic": "diagnostic"}),
        "design.yaml",
        by("tests"),
        now=NOW,
    )
    moved = launch(session, "3", {"prior_programming": "none"}, at=timedelta(hours=1))
    assert moved.enrolment.design_version == 2 and moved.state.version == 2
    assert isinstance(moved.decision, NextActivity) and moved.decision.activity == "diagnostic"
    kept = launch(session, "4", {}, at=timedelta(hours=1))
    assert kept.enrolment.id == at_intake.enrolment.id
    assert kept.enrolment.design_version == 1  # no migration for a learner at the intake
    rebuilt = reading.rebuild_snapshot(session, moved.enrolment.id, now=NOW)
    assert rebuilt.state == moved.state


def test_route_reasons_are_the_engines_words_when_the_route_was_chosen(
    session: Session, published: None
) -> None:
    view = launch(session, "7", {"prior_programming": "experienced"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "interest"},
        right={"diagnostic": [2], "project": [4]},
        elective="elective-web",
        now=NOW,
    )
    assert isinstance(view.decision, DesignCompleted)
    (reason,) = instructing.route_reasons(session, view)
    assert reason.startswith("You are on the foundations route because")
    assert "0.33" in reason
    moved = instructing.override(
        session, view.enrolment.id, "Irene", "route:standard", "try it", NOW
    )
    (reason,) = instructing.route_reasons(session, moved)
    assert "instructor" in reason and "try it" in reason


FOLLOW_UP = """\
design: follow-up
title: Follow-up course
attributes:
  intro_grade:
    type: number
    minimum: 0
    maximum: 1
    sources: [outcome]
    key: intro-programming.grade
  prior_programming:
    type: choice
    values: [none, some, experienced]
    sources: [intake]
activities:
  welcome: {kind: intake, title: Welcome, ask: [prior_programming]}
  recap: {kind: page, title: Recap, body: "A recap."}
  advanced: {kind: page, title: Advanced, body: "Onwards."}
route:
  - welcome
  - branch:
      - name: onwards
        when: intro_grade >= 0.8
        then: [advanced]
      - name: recap first
        otherwise: true
        then: [recap, advanced]
"""


def test_outcomes_and_intake_answers_from_another_course_are_used(
    session: Session, published: None
) -> None:
    design_publishing.publish_design(
        session, tenant(session), FOLLOW_UP, "follow-up.yaml", by("tests"), now=NOW
    )
    view = launch(session, "3", {"prior_programming": "none"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "interest"},
        right={"diagnostic": [1], "project": [4]},
        elective="elective-games",
        now=NOW,
    )
    assert view.decision.grade == pytest.approx(0.8)
    context = launch_context(
        subject="3",
        name="Learner 3",
        custom={"design": "follow-up"},
        resource_link_id="9",
        context_id="5",
    )
    follow_up = launch_with(session, context, NOW + timedelta(days=30))
    assert follow_up.state.attributes["intro_grade"] == pytest.approx(0.8)
    assert follow_up.state.attribute_sources["intro_grade"] == "outcome"
    # prior_programming came from a custom parameter in the first course, not from an intake
    # answer there, so it is asked here (only intake answers are carried over).
    assert isinstance(follow_up.decision, NeedsInput)
    follow_up = learner_actions.submit_intake(
        session,
        follow_up.enrolment,
        "welcome",
        {"prior_programming": "some"},
        NOW + timedelta(days=30),
        expected_sequence=follow_up.event_count,
    )
    assert isinstance(follow_up.decision, NextActivity)
    assert follow_up.decision.activity == "advanced"
    assert follow_up.decision.routes == ("onwards",)
