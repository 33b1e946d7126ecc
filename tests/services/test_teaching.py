"""The instructor's use cases on SQLite and PostgreSQL: the activity's page (everyone, launched or
only in the roster, with their place, flags and grade delivery), the roster sync and its failures,
route counts, a learner's decision trace, and the teacher's controls (move, reset)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.analytics import queries
from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.engine import NextActivity
from adaptive_lti.core.errors import InvalidInputError, NotFoundError, PlatformServiceError
from adaptive_lti.core.journey import JourneyView
from adaptive_lti.core.roster import Member
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.tables import LearnerEvent, RosterMember
from adaptive_lti.services import launch as launch_service
from adaptive_lti.services import teaching_course, teaching_learner
from adaptive_lti.services.journey import reading
from adaptive_lti.services.teaching_course import InstructorPlace
from tests.design_samples import CLIENT_ID, INSTRUCTOR, ISSUER, NOW, launch_context
from tests.services.test_progress import launch, published, walk

__all__ = ["published"]  # the fixture, shared with the journey tests

MEMBERSHIPS_URL = ISSUER + "/mod/lti/services.php/CourseSection/2/bindings/1/memberships"


def instructor_place(session: Session, *, resource_link_id: str = "1") -> InstructorPlace:
    context = dataclasses.replace(
        launch_context(
            roles=(INSTRUCTOR,),
            subject="4",
            name="Teacher One",
            resource_link_id=resource_link_id,
        ),
        nrps={"context_memberships_url": MEMBERSHIPS_URL, "service_versions": ["2.0"]},
    )
    found = registrations_repo.lookup_registration(session, ISSUER, CLIENT_ID, "1")
    assert found is not None and found.deployment is not None
    recorded = launch_service.record_launch(
        session,
        context,
        registration_id=found.registration.id,
        deployment_pk=found.deployment.id,
        now=NOW,
    )
    return InstructorPlace.of(recorded)


class Roster:
    """A platform's membership service: the members it lists, or the failure it answers with."""

    def __init__(self, members: list[Member], failure: Exception | None = None) -> None:
        self.members = members
        self.failure = failure
        self.calls: list[str] = []

    def fetch_members(self, registration_id: int, memberships_url: str) -> list[Member]:
        self.calls.append(memberships_url)
        if self.failure is not None:
            raise self.failure
        return self.members


LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def member(user_id: str, name: str, *, instructor: bool = False) -> Member:
    role = INSTRUCTOR if instructor else LEARNER_ROLE
    return Member(
        user_id=user_id,
        roles=(role,),
        roles_short=("Instructor" if instructor else "Learner",),
        name=name,
        email=f"{name.split()[0].lower()}@example.edu",
    )


COURSE = [
    member("3", "Learner 3"),
    member("6", "Learner 6"),
    member("9", "Gabi Garcia"),  # never launches
    member("4", "Teacher One", instructor=True),
]


def dara_needs_help(session: Session) -> JourneyView:
    view = launch(session, "6", {"prior_programming": "none"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "academic"},
        right={"diagnostic": [2], "loops-check": [1, 1, 1], "project": [3]},
        elective="elective-games",
        now=NOW,
    )
    return view


def ana_mid_route(session: Session) -> JourneyView:
    view = launch(session, "3", {"prior_programming": "none"})
    view, _ = walk(
        session,
        view,
        intake={"goal": "interest"},
        right={"diagnostic": [1]},
        elective="elective-games",
        now=NOW,
        stop_after="variables-lesson",
    )
    return view


def test_the_page_lists_everyone_with_their_place(session: Session, published: None) -> None:
    place = instructor_place(session)
    teaching_course.sync_course_roster(session, place, Roster(COURSE), now=NOW)
    ana_mid_route(session)
    dara_needs_help(session)
    overview = teaching_course.course_overview(session, place)

    by_sub = {m.user_sub: m for m in overview.learners}
    assert set(by_sub) == {"3", "6", "9"}
    assert [m.name for m in overview.staff] == ["Teacher One"]
    gabi = by_sub["9"]
    assert not gabi.launched and gabi.place == "Never launched the activity" and gabi.in_roster
    assert overview.never_launched == 1

    ana = by_sub["3"]
    assert ana.launched and ana.place_kind == "activity"
    assert ana.place == "Variables check" and ana.activity_id == "variables-check"
    assert ana.route == "foundations" and 0 < (ana.progress or 0) < 1
    assert not ana.needs_help and ana.last_activity is not None

    dara = by_sub["6"]
    assert dara.needs_help and overview.needs_help == (dara,)
    assert dara.flags and dara.flags[0][0] == "needs-help" and "loops" in dara.flags[0][1].lower()
    assert dara.place.startswith("Finished")
    assert dara.grade is not None
    # The grade went to the outbox; its delivery status is shown (nothing delivered it yet).
    assert dara.score is not None and dara.score.status == "pending"
    assert overview.design is not None and overview.design.design_id == "intro-programming"
    assert overview.design.lint.errors == 0
    assert overview.can_sync_roster and overview.roster_size == 4


def test_roster_sync_reports_what_changed_and_a_failure_changes_nothing(
    session: Session, published: None
) -> None:
    place = instructor_place(session)
    source = Roster(COURSE)
    synced = teaching_course.sync_course_roster(session, place, source, now=NOW)
    assert source.calls == [MEMBERSHIPS_URL]
    assert synced.sync_error is None and synced.sync_report is not None
    assert synced.sync_report.added == 4
    again = teaching_course.sync_course_roster(session, place, Roster(COURSE[:2]), now=NOW)
    assert again.sync_report is not None
    assert (again.sync_report.unchanged, again.sync_report.deactivated) == (2, 2)

    before = session.scalar(select(func.count()).select_from(RosterMember))
    failing = Roster([], PlatformServiceError("The platform did not answer.", hint="Try later."))
    failed = teaching_course.sync_course_roster(session, place, failing, now=NOW)
    assert failed.sync_report is None and failed.sync_error is not None
    assert "did not answer" in failed.sync_error.message
    assert session.scalar(select(func.count()).select_from(RosterMember)) == before


def test_roster_sync_without_the_names_and_roles_service_says_what_to_do(
    session: Session, published: None
) -> None:
    place = instructor_place(session)
    # Another course, whose launches never carried the NRPS claim.
    found = registrations_repo.lookup_registration(session, ISSUER, CLIENT_ID, "1")
    assert found is not None and found.deployment is not None
    recorded = launch_service.record_launch(
        session,
        launch_context(roles=(INSTRUCTOR,), subject="4", context_id="77", resource_link_id="70"),
        registration_id=found.registration.id,
        deployment_pk=found.deployment.id,
        now=NOW,
    )
    other = dataclasses.replace(
        place,
        launch_id=recorded.launch_id,
        context_pk=recorded.context_pk,
        resource_link_pk=recorded.resource_link_pk,
    )
    overview = teaching_course.sync_course_roster(session, other, Roster(COURSE), now=NOW)
    assert overview.sync_error is not None and "Names and Role" in overview.sync_error.hint
    assert not overview.can_sync_roster


def test_route_counts_per_branch_case_and_choice(session: Session, published: None) -> None:
    ana_mid_route(session)
    dara_needs_help(session)
    chen = launch(session, "5", {"prior_programming": "some"})
    walk(
        session,
        chen,
        intake={"goal": "academic"},
        right={"diagnostic": [4], "project": [4]},
        elective="elective-web",
        now=NOW,
    )
    place = instructor_place(session)
    assert place.resource_link_pk is not None
    (report,) = queries.route_report(session, Tenant(place.registration_id), place.resource_link_pk)
    assert (report.design_id, report.version, report.learners) == ("intro-programming", 1, 3)
    branch, choice = report.tables
    assert branch.kind == "branch" and branch.options == ("fast track", "foundations", "standard")
    rows = {row.label: row for row in branch.rows}
    assert rows["foundations"].learners == 2 and rows["foundations"].needs_help == 1
    assert rows["foundations"].finished == 1
    assert rows["standard"].learners == 1 and rows["standard"].passed == 1
    assert rows["standard"].average_grade == pytest.approx(0.8)  # 4 of 5 project questions
    assert "fast track" not in rows
    picks = {row.label: row.learners for row in choice.rows}
    assert picks == {"elective-games": 1, "elective-web": 1, queries.NOT_YET: 1}
    assert choice.title_of("elective-games") == "Elective: a guessing game"
    # By background: who each route got, and how many of them passed.
    prior = next(t for t in branch.by_background if t.attribute == "prior_programming")
    assert prior.values == ("none", "some", "experienced")
    assert prior.cell("foundations", "none") == (2, 1)  # Ana (on her way) and Dara (passed)
    assert prior.cell("standard", "some") == (1, 1)
    assert prior.cell("fast track", "experienced") == (0, 0)
    goal = next(t for t in branch.by_background if t.attribute == "goal")
    assert goal.cell("foundations", "academic") == (1, 1)


def test_the_decision_trace_shows_each_rule_its_condition_and_the_values_read(
    session: Session, published: None
) -> None:
    view = ana_mid_route(session)
    place = instructor_place(session)
    detail = teaching_learner.learner_detail(session, place, view.enrolment.id)
    assert detail.member.name == "Learner 3" and detail.design_id == "intro-programming"
    assert [step.sequence for step in detail.trace] == list(range(len(detail.trace)))
    assert detail.trace[0].event.startswith("Launched the activity")
    routed = [
        entry
        for step in detail.trace
        for entry in step.explanation.trace
        if entry.condition and "diagnostic.score" in entry.condition and entry.result
    ]
    assert routed, "the branch decision is in the trace"
    assert routed[0].values["prior_programming"] == "none"
    assert "foundations" in routed[0].rule
    assert ("prior_programming", "none", "custom") in detail.attributes
    assert (
        "foundations",
        'foundations (when prior_programming == "none" or diagnostic.score < 0.5)',
    ) in detail.targets.routes
    assert ("loops-check", "Loops check") in detail.targets.activities


def test_move_to_a_route_is_an_event_with_who_and_why(session: Session, published: None) -> None:
    view = ana_mid_route(session)
    place = instructor_place(session)
    teaching_learner.move_learner(
        session,
        place,
        view.enrolment.id,
        "route:standard",
        "  Passed variables in class  ",
        now=NOW + timedelta(minutes=5),
    )
    moved = reading.journey_for(session, view.enrolment.id)
    assert isinstance(moved.decision, NextActivity)
    assert moved.decision.activity == "conditionals-lesson"
    assert "standard" in moved.decision.routes
    last = session.scalars(
        select(LearnerEvent)
        .where(LearnerEvent.enrolment_id == view.enrolment.id)
        .order_by(LearnerEvent.sequence.desc())
    ).first()
    assert last is not None and last.event_type == "overridden"
    assert last.actor == "Teacher One (user 4)"
    assert last.payload["reason"] == "Passed variables in class"
    detail = teaching_learner.learner_detail(session, place, view.enrolment.id)
    assert detail.member.route == "standard"
    assert detail.member.overridden is not None and "Teacher One" in detail.member.overridden
    assert detail.trace[-1].event.startswith("Moved to route standard by Teacher One")


def test_move_to_an_activity_and_reset(session: Session, published: None) -> None:
    view = dara_needs_help(session)
    place = instructor_place(session)
    teaching_learner.move_learner(
        session, place, view.enrolment.id, "activity:loops-check", "one more try", now=NOW
    )
    moved = reading.journey_for(session, view.enrolment.id)
    assert isinstance(moved.decision, NextActivity) and moved.decision.activity == "loops-check"
    teaching_learner.reset_learner(
        session, place, view.enrolment.id, "starts over next term", now=NOW
    )
    reset = reading.journey_for(session, view.enrolment.id)
    assert reset.state.outcomes == {} and reset.state.attributes["prior_programming"] == "none"
    types = session.scalars(
        select(LearnerEvent.event_type)
        .where(LearnerEvent.enrolment_id == view.enrolment.id)
        .order_by(LearnerEvent.sequence)
    ).all()
    assert types[-2:] == ["overridden", "reset"]


@pytest.mark.parametrize(
    ("target", "reason", "message"),
    [
        ("route:standard", "   ", "Say why"),
        ("route:standard", "x" * 501, "at most 500"),
        ("route:nowhere", "because", "not a route or an activity"),
        ("activity:no-such-thing", "because", "not a route or an activity"),
        ("somewhere", "because", "not a route or an activity"),
    ],
)
def test_a_refused_move_writes_nothing(
    session: Session, published: None, target: str, reason: str, message: str
) -> None:
    view = ana_mid_route(session)
    place = instructor_place(session)
    before = session.scalar(select(func.count()).select_from(LearnerEvent))
    with pytest.raises(InvalidInputError, match=message):
        teaching_learner.move_learner(session, place, view.enrolment.id, target, reason, now=NOW)
    with pytest.raises(InvalidInputError):
        teaching_learner.reset_learner(session, place, view.enrolment.id, "", now=NOW)
    assert session.scalar(select(func.count()).select_from(LearnerEvent)) == before


def test_learners_of_another_activity_are_not_found(session: Session, published: None) -> None:
    elsewhere = launch(session, "3", {"prior_programming": "none"}, resource_link_id="99")
    place = instructor_place(session)  # the instructor of activity "1"
    with pytest.raises(NotFoundError):
        teaching_learner.learner_detail(session, place, elsewhere.enrolment.id)
    with pytest.raises(NotFoundError):
        teaching_learner.move_learner(
            session, place, elsewhere.enrolment.id, "route:standard", "because", now=NOW
        )
    with pytest.raises(NotFoundError):
        teaching_learner.reset_learner(session, place, elsewhere.enrolment.id, "because", now=NOW)
    with pytest.raises(NotFoundError):
        teaching_learner.learner_detail(session, place, 10**9)


def test_a_roster_read_ahead_of_the_transaction_is_stored_or_its_failure_shown(
    session: Session, published: None
) -> None:
    place = instructor_place(session)
    url = teaching_course.roster_url(session, place)
    assert url == MEMBERSHIPS_URL
    fetched = teaching_course.FetchedRoster.read(Roster(COURSE), place.registration_id, url)
    stored = teaching_course.sync_course_roster(session, place, fetched, now=NOW)
    assert stored.sync_report is not None and stored.sync_report.added == len(COURSE)

    down = PlatformServiceError("The platform did not answer.", hint="Try again later.")
    failed = teaching_course.FetchedRoster.read(Roster([], down), place.registration_id, url)
    assert failed.failure is down
    shown = teaching_course.sync_course_roster(session, place, failed, now=NOW)
    assert shown.sync_error is down and shown.sync_report is None
    assert (
        teaching_course.FetchedRoster.read(Roster(COURSE), place.registration_id, None).members
        == ()
    )
