"""The NRPS client against a Moodle-shaped platform: paging, roles, refusals."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import ServiceCallRefused
from adaptive_lti.core.roster import MemberStatus
from adaptive_lti.lti.nrps import NrpsClient, parse_member
from tests.lti.fake_platform import (
    MEMBERSHIPS_URL,
    MOODLE_MEMBERS,
    NRPS_SCOPE,
    FakeClock,
    FakePlatform,
    new_platform,
    service_clients,
)
from tests.lti.fake_platform_fixtures import clock, registration_id

# Fixtures, shared with the other fake-platform tests.
__all__ = ["clock", "registration_id"]


def client_for(session_factory: sessionmaker[Session], platform: FakePlatform) -> NrpsClient:
    return service_clients(session_factory, platform)[1]


def test_moodle_members_with_short_roles_are_normalised(
    session_factory: sessionmaker[Session], clock: FakeClock, registration_id: int
) -> None:
    platform = new_platform(clock=clock)
    members = client_for(session_factory, platform).fetch_members(registration_id, MEMBERSHIPS_URL)
    student, teacher = members
    assert student.user_id == "3"
    assert student.roles == ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",)
    assert student.roles_short == ("Learner",)
    assert student.username == "student1"
    assert student.lis_person_sourcedid == "SIS-student1"
    assert student.status is MemberStatus.active
    assert teacher.roles_short == ("Instructor",)
    [request] = [r for r in platform.requests if "memberships" in r.url.path]
    assert request.headers["accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    assert platform.token_requests[0]["scope"] == NRPS_SCOPE


def test_pages_are_followed_through_link_headers_exactly_as_given(
    session_factory: sessionmaker[Session], clock: FakeClock, registration_id: int
) -> None:
    many = [{**MOODLE_MEMBERS[0], "user_id": str(n), "name": f"Student {n}"} for n in range(10, 15)]
    platform = new_platform(clock=clock, members=many, members_page_size=2)
    members = client_for(session_factory, platform).fetch_members(registration_id, MEMBERSHIPS_URL)
    assert [m.user_id for m in members] == ["10", "11", "12", "13", "14"]
    urls = [str(r.url) for r in platform.requests if "memberships" in r.url.path]
    assert urls == [
        MEMBERSHIPS_URL,
        f"{MEMBERSHIPS_URL}?PageNo=2&Limit=Mixed",
        f"{MEMBERSHIPS_URL}?PageNo=3&Limit=Mixed",
    ]
    # One token served every page.
    assert len(platform.token_requests) == 1


def test_a_refused_membership_service_says_what_to_turn_on(
    session_factory: sessionmaker[Session], clock: FakeClock, registration_id: int
) -> None:
    platform = new_platform(clock=clock)
    import httpx

    from adaptive_lti.lti.service_http import new_http_client
    from adaptive_lti.lti.service_token import ServiceTokenProvider
    from tests.lti.fake_platform import tool_signing_key

    def forbid(request: httpx.Request) -> httpx.Response:
        if "memberships" in request.url.path:
            return httpx.Response(403, text="Forbidden")
        return platform.handle(request)

    http = new_http_client(httpx.MockTransport(forbid))
    tokens = ServiceTokenProvider(session_factory, http, signing_key=tool_signing_key, clock=clock)
    with pytest.raises(ServiceCallRefused) as caught:
        NrpsClient(tokens, http).fetch_members(registration_id, MEMBERSHIPS_URL)
    assert "retrieve members' information" in caught.value.hint


def test_members_without_user_id_are_skipped_and_statuses_read() -> None:
    assert parse_member({"name": "nobody"}) is None
    member = parse_member(
        {
            "user_id": 7,
            "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", "Mentor"],
            "status": "Inactive",
        }
    )
    assert member is not None
    assert member.user_id == "7"
    assert member.roles_short == ("Instructor", "Mentor")
    assert member.status is MemberStatus.inactive
