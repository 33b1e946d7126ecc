"""Roster sync: members upserted from NRPS, missing ones marked inactive, counts returned."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.grading import ServiceUnavailable
from adaptive_lti.core.roster import MemberStatus, RosterSyncCounts
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import Context, Deployment, Launch, User
from adaptive_lti.lti.nrps import NrpsClient
from adaptive_lti.lti.service_http import new_http_client
from adaptive_lti.lti.service_token import ServiceTokenProvider
from adaptive_lti.services import roster
from tests.lti.fake_platform import (
    MEMBERSHIPS_URL,
    MOODLE_MEMBERS,
    FakeClock,
    FakePlatform,
    add_fake_registration,
    new_platform,
    service_clients,
    tool_signing_key,
)
from tests.lti.fake_platform_fixtures import clock

# Fixtures, shared with the other fake-platform tests.
__all__ = ["clock"]


@pytest.fixture
def course(session_factory: sessionmaker[Session], clock: FakeClock) -> tuple[int, int]:
    """(registration id, context id) of Moodle's course "LTI 101"."""
    with transaction(session_factory) as session:
        registration_id = add_fake_registration(session, clock())
        deployment = session.query(Deployment).filter_by(registration_id=registration_id).one()
        context = Context(
            deployment_id=deployment.id,
            context_id="2",
            label="LTI101",
            title="LTI 101",
            types=["http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"],
            first_seen_at=clock(),
            last_seen_at=clock(),
        )
        session.add(context)
        session.flush()
        return registration_id, context.id


def sync(
    session_factory: sessionmaker[Session],
    platform: FakePlatform,
    course: tuple[int, int],
    clock: FakeClock,
    client: NrpsClient | None = None,
) -> RosterSyncCounts:
    client = client or service_clients(session_factory, platform, clock)[1]
    with transaction(session_factory) as session:
        return roster.sync_roster(session, *course, MEMBERSHIPS_URL, client, now=clock())


def test_a_first_sync_stores_everyone_the_platform_lists(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    counts = sync(session_factory, new_platform(clock=clock), course, clock)
    assert counts == RosterSyncCounts(added=2)
    with transaction(session_factory) as session:
        entries = roster.list_roster(session, course[1])
    by_id = {entry.member.user_id: entry.member for entry in entries}
    assert by_id["3"].name == "Student One"
    assert by_id["3"].email == "student1@example.com"
    assert by_id["3"].roles_short == ("Learner",)
    assert by_id["3"].roles == ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",)
    assert by_id["4"].roles_short == ("Instructor",)
    assert by_id["4"].lis_person_sourcedid == "SIS-teacher1"


def test_a_later_sync_updates_adds_and_marks_missing_members_inactive(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    sync(session_factory, new_platform(clock=clock), course, clock)
    clock.advance(86400)
    renamed = {**MOODLE_MEMBERS[0], "name": "Student Uno"}
    newcomer = {**MOODLE_MEMBERS[0], "user_id": "9", "name": "Late Comer", "email": None}
    platform = new_platform(clock=clock, members=[renamed, newcomer], members_page_size=1)
    counts = sync(session_factory, platform, course, clock)
    assert counts == RosterSyncCounts(added=1, updated=1, unchanged=0, deactivated=1)
    assert counts.listed == 2
    with transaction(session_factory) as session:
        entries = {e.member.user_id: e for e in roster.list_roster(session, course[1])}
        active = roster.list_roster(session, course[1], include_inactive=False)
    assert entries["3"].member.name == "Student Uno"
    assert entries["3"].synced_at == clock()
    assert entries["3"].first_synced_at < clock()
    # The teacher left the course: kept (their history refers to them) but inactive.
    assert entries["4"].member.status is MemberStatus.inactive
    assert {e.member.user_id for e in active} == {"3", "9"}
    # Syncing the same list again changes nothing.
    again = sync(session_factory, platform, course, clock)
    assert again == RosterSyncCounts(unchanged=2)


def test_a_failed_read_changes_nothing(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    platform = new_platform(clock=clock)
    sync(session_factory, platform, course, clock)

    def broken_second_page(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("PageNo") == "2":
            return httpx.Response(502, text="Bad gateway")
        return platform.handle(request)

    many = [{**MOODLE_MEMBERS[0], "user_id": str(n)} for n in range(20, 24)]
    platform.members = many
    platform.members_page_size = 2
    http = new_http_client(httpx.MockTransport(broken_second_page))
    tokens = ServiceTokenProvider(session_factory, http, signing_key=tool_signing_key, clock=clock)
    with pytest.raises(ServiceUnavailable, match="HTTP 502"):
        sync(session_factory, platform, course, clock, NrpsClient(tokens, http))
    with transaction(session_factory) as session:
        stored = roster.list_roster(session, course[1])
    assert {e.member.user_id for e in stored} == {"3", "4"}
    assert all(e.member.status is MemberStatus.active for e in stored)


def test_without_a_memberships_url_the_instructor_is_told_what_to_turn_on(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    client = service_clients(session_factory, new_platform(clock=clock), clock)[1]
    with transaction(session_factory) as session, pytest.raises(InvalidInputError) as caught:
        roster.sync_roster(session, *course, "", client, now=clock())
    assert "names and roles service" in caught.value.hint


def test_the_roster_says_who_never_launched_the_tool(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    registration_id, context_id = course
    sync(session_factory, new_platform(clock=clock), course, clock)
    with transaction(session_factory) as session:
        deployment = session.query(Deployment).filter_by(registration_id=registration_id).one()
        student = User(
            registration_id=registration_id,
            subject="3",
            first_seen_at=clock(),
            last_seen_at=clock(),
        )
        session.add(student)
        session.flush()
        for hours in (1, 5):
            session.add(
                Launch(
                    registration_id=registration_id,
                    deployment_id=deployment.id,
                    user_id=student.id,
                    context_id=context_id,
                    message_type="LtiResourceLinkRequest",
                    target_link_uri="https://tool.example.org/lti/launch",
                    roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                    roles_short=["Learner"],
                    custom={},
                    launched_at=clock() + timedelta(hours=hours),
                )
            )
    with transaction(session_factory) as session:
        entries = {e.member.user_id: e for e in roster.list_roster(session, context_id)}
    assert entries["3"].has_launched
    assert entries["3"].last_launched_at == clock() + timedelta(hours=5)
    assert not entries["4"].has_launched


def test_an_nrps_client_of_its_own_signs_with_the_tools_key(
    session_factory: sessionmaker[Session], course: tuple[int, int], clock: FakeClock
) -> None:
    from adaptive_lti.lti import keys
    from adaptive_lti.lti.nrps import open_nrps_client
    from adaptive_lti.settings import Settings

    with transaction(session_factory) as session:
        keys.ensure_signing_key(session, Settings(), clock())
        public_key = keys.signing_key(session).private_key.public_key()
    platform = FakePlatform(tool_public_key=public_key)  # the platform's clock: real time
    client = open_nrps_client(session_factory, platform.transport())
    try:
        members = client.fetch_members(course[0], MEMBERSHIPS_URL)
    finally:
        client.close()
    assert [m.user_id for m in members] == ["3", "4"]
