"""Roster sync (LTI NRPS 2.0): store who is in a course, so analytics count learners who never
launched and the instructor's page lists everyone.

The caller passes the launch's ``context_memberships_url`` and an NRPS client (``lti.nrps``);
the members are upserted in the caller's transaction (flushed, never committed), and members
the platform no longer lists are kept but marked inactive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.orm import Session

from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.roster import Member, RosterEntry, RosterSyncCounts
from adaptive_lti.db import roster_repo


class MembershipSource(Protocol):
    """What a sync needs from the platform (``lti.nrps.NrpsClient`` provides it)."""

    def fetch_members(self, registration_id: int, memberships_url: str) -> list[Member]: ...


def sync_roster(
    session: Session,
    registration_id: int,
    context_id: int,
    memberships_url: str,
    client: MembershipSource,
    *,
    now: datetime | None = None,
) -> RosterSyncCounts:
    """Read every member from the platform, then store them; returns what changed.

    ``context_id`` is the tool's id of the course (``lti_context.id``). The platform is read in
    full before anything is written, so a failed read (``PlatformServiceError``) changes nothing.
    """
    if not memberships_url:
        raise InvalidInputError(
            "The launch did not carry a memberships URL, so the course's members cannot be read.",
            hint="Turn on the names and roles service for the tool on the platform and launch "
            "again.",
        )
    members = client.fetch_members(registration_id, memberships_url)
    return roster_repo.replace_members(
        session, registration_id, context_id, members, now or datetime.now(UTC)
    )


def list_roster(
    session: Session, context_id: int, *, include_inactive: bool = True
) -> list[RosterEntry]:
    """The course's members as last synced, sorted by name."""
    return roster_repo.list_members(session, context_id, include_inactive=include_inactive)
