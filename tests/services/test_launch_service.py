"""Recording launches: upserts of user, course and activity, and the instructor's course page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import DeploymentInfo
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.base import as_utc
from adaptive_lti.db.tables import Context, Launch, ResourceLink, User
from adaptive_lti.lti.claims import parse_launch_context
from adaptive_lti.services import launch as launch_service
from tests.lti.scripted_platform import CLIENT_ID, INSTRUCTOR, LEARNER, LTI, ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def setup(session: Session) -> tuple[ScriptedPlatform, int, DeploymentInfo]:
    platform = ScriptedPlatform()
    registration = platform.register(session, NOW)
    deployment = registrations_repo.find_deployment(session, registration.id, "1")
    assert deployment is not None
    return platform, registration.id, deployment


def count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def test_record_launch_upserts_and_appends(session: Session) -> None:
    platform, registration_id, deployment = setup(session)
    first = parse_launch_context(platform.claims(nonce="n", now=NOW), CLIENT_ID)
    recorded = launch_service.record_launch(
        session, first, registration_id=registration_id, deployment_pk=deployment.id, now=NOW
    )
    claims = platform.claims(nonce="n", now=NOW)
    claims["email"] = "new@example.com"
    claims[LTI + "context"]["title"] = "LTI 101 (renamed)"
    later = NOW + timedelta(days=1)
    again = launch_service.record_launch(
        session,
        parse_launch_context(claims, CLIENT_ID),
        registration_id=registration_id,
        deployment_pk=deployment.id,
        now=later,
    )
    assert (again.user_pk, again.context_pk, again.resource_link_pk) == (
        recorded.user_pk,
        recorded.context_pk,
        recorded.resource_link_pk,
    )
    assert again.launch_id != recorded.launch_id
    assert (count(session, User), count(session, Context), count(session, ResourceLink)) == (
        1,
        1,
        1,
    )
    assert count(session, Launch) == 2
    user = session.get(User, recorded.user_pk)
    assert user is not None and user.email == "new@example.com"
    assert as_utc(user.first_seen_at) == NOW and as_utc(user.last_seen_at) == later
    context = session.get(Context, recorded.context_pk)
    assert context is not None and context.title == "LTI 101 (renamed)"


def test_launch_without_context_or_link_records_only_the_launch_and_user(session: Session) -> None:
    platform, registration_id, deployment = setup(session)
    claims = platform.claims(nonce="n", now=NOW)
    claims.pop(LTI + "context")
    claims.pop(LTI + "resource_link")
    recorded = launch_service.record_launch(
        session,
        parse_launch_context(claims, CLIENT_ID),
        registration_id=registration_id,
        deployment_pk=deployment.id,
        now=NOW,
    )
    assert recorded.context_pk is None and recorded.resource_link_pk is None
    page = launch_service.course_page(session, context_pk=None, resource_link_pk=None)
    assert page.recent_launches == () and page.launch_count == 0


def test_course_page_lists_the_courses_launches_newest_first(session: Session) -> None:
    platform, registration_id, deployment = setup(session)
    recorded = None
    for minute, (subject, role) in enumerate([("3", LEARNER), ("5", LEARNER), ("4", INSTRUCTOR)]):
        claims = platform.claims(nonce="n", now=NOW, subject=subject, role=role)
        if subject == "5":
            claims["name"] = "Second Student"
        recorded = launch_service.record_launch(
            session,
            parse_launch_context(claims, CLIENT_ID),
            registration_id=registration_id,
            deployment_pk=deployment.id,
            now=NOW + timedelta(minutes=minute),
        )
    assert recorded is not None
    page = launch_service.course_page(
        session, context_pk=recorded.context_pk, resource_link_pk=recorded.resource_link_pk
    )
    assert page.context is not None and page.context.title == "LTI 101"
    assert page.resource_link is not None and page.resource_link.title == "Harness activity"
    assert [item.user_display_name for item in page.recent_launches] == [
        "Teacher One",
        "Second Student",
        "Student One",
    ]
    assert page.launch_count == 3 and page.person_count == 3
    assert page.recent_launches[0].roles_short == ("Instructor",)
    limited = launch_service.course_page(
        session, context_pk=recorded.context_pk, resource_link_pk=None, limit=1
    )
    assert len(limited.recent_launches) == 1 and limited.launch_count == 3


def test_unchanged_course_rows_are_not_rewritten_within_the_hour(session: Session) -> None:
    """Concurrent launches in one course must not queue on the course's row lock."""
    platform, registration_id, deployment = setup(session)

    def record(at: datetime) -> int:
        recorded = launch_service.record_launch(
            session,
            parse_launch_context(platform.claims(nonce="n", now=at), CLIENT_ID),
            registration_id=registration_id,
            deployment_pk=deployment.id,
            now=at,
        )
        assert recorded.context_pk is not None
        return recorded.context_pk

    context_pk = record(NOW)
    record(NOW + timedelta(minutes=30))
    context = session.get(Context, context_pk)
    assert context is not None
    session.refresh(context)
    assert as_utc(context.last_seen_at) == NOW  # not rewritten
    record(NOW + timedelta(minutes=61))
    session.refresh(context)
    assert as_utc(context.last_seen_at) == NOW + timedelta(minutes=61)
