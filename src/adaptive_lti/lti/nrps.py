"""LTI Names and Role Provisioning Services 2.0 client: the members of a course.

GET the launch's ``context_memberships_url`` with the membership container media type (§2.1),
follow ``Link: rel="next"`` exactly as given (§2.4.1: the URL is opaque, its case and query
kept), and turn each member into a ``core.roster.Member`` with roles normalised: Moodle sends
short roles (``Learner``, ``Instructor``), the spec full URIs; both become (full URI, short name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import SCOPE_MEMBERSHIP_READONLY, ServiceCallRefused
from adaptive_lti.core.lti import normalise_role
from adaptive_lti.core.roster import Member, MemberStatus
from adaptive_lti.lti.service_http import (
    MAX_PAGES,
    authorised_get,
    body_excerpt,
    next_page_url,
    parse_json_body,
    raise_for_service_status,
)
from adaptive_lti.lti.service_token import PlatformServiceClient

MEDIA_MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ROSTER_HINT = (
    "On Moodle, edit the tool (Site administration > Plugins > Activity modules > External tool "
    "> Manage tools) and set 'IMS LTI Names and Role Provisioning' to 'Use this service to "
    "retrieve members' information as per privacy settings'."
)


def _optional_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_member(entry: Mapping[str, Any]) -> Member | None:
    """One NRPS member (§2.2); None when it has no ``user_id``."""
    user_id = _optional_text(entry.get("user_id"))
    if user_id is None:
        return None
    raw_roles = entry.get("roles")
    roles = [
        normalise_role(raw)
        for raw in (raw_roles if isinstance(raw_roles, list) else [])
        if isinstance(raw, str) and raw.strip()
    ]
    return Member(
        user_id=user_id,
        roles=tuple(role.uri for role in roles),
        roles_short=tuple(role.short for role in roles),
        status=MemberStatus.from_platform(entry.get("status")),
        name=_optional_text(entry.get("name")),
        given_name=_optional_text(entry.get("given_name")),
        family_name=_optional_text(entry.get("family_name")),
        email=_optional_text(entry.get("email")),
        # Moodle's extension field; other platforms may not send it.
        username=_optional_text(entry.get("ext_user_username")),
        lis_person_sourcedid=_optional_text(entry.get("lis_person_sourcedid")),
    )


class NrpsClient(PlatformServiceClient):
    """Reads a course's members for one registration. ``tokens`` authorises the calls."""

    def fetch_members(self, registration_id: int, memberships_url: str) -> list[Member]:
        """Every member on every page. Raises ``ServiceCallRefused``/``ServiceUnavailable``."""
        url: str | None = memberships_url
        members: list[Member] = []
        seen_pages: set[str] = set()
        for _page in range(MAX_PAGES):
            if url is None:
                return members
            if url in seen_pages:
                raise ServiceCallRefused(
                    f"The platform's membership service sent the tool back to a page it had "
                    f"already read ({url}): its paging loops.",
                    hint="Report this to the platform's administrator.",
                )
            seen_pages.add(url)
            response = self._tokens.send(
                registration_id,
                {SCOPE_MEMBERSHIP_READONLY},
                authorised_get(self._http, url, MEDIA_MEMBERSHIP_CONTAINER),
                "membership service",
            )
            if response.status_code == 403:
                raise ServiceCallRefused(
                    "The platform does not let the tool read the course's members (HTTP 403).",
                    hint=ROSTER_HINT,
                )
            raise_for_service_status(response, "membership service")
            body = parse_json_body(response, "membership service")
            entries = body.get("members") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise ServiceCallRefused(
                    "The platform's membership service answered without a 'members' list: "
                    + body_excerpt(response)
                )
            for entry in entries:
                if isinstance(entry, dict) and (member := parse_member(entry)) is not None:
                    members.append(member)
            url = next_page_url(response)
        raise ServiceCallRefused(
            f"The platform's membership service has more than {MAX_PAGES} pages.",
            hint="Report this to the platform's administrator.",
        )


def open_nrps_client(
    session_factory: sessionmaker[Session], transport: httpx.BaseTransport | None = None
) -> NrpsClient:
    """An NRPS client with its own HTTP client and token provider; ``close()`` it when done."""
    return NrpsClient.open(session_factory, transport)
