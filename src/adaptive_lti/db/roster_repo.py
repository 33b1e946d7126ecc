"""Course members synced through NRPS, as values. Callers own the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.roster import Member, MemberStatus, RosterEntry, RosterSyncCounts
from adaptive_lti.db.grades_repo import as_utc
from adaptive_lti.db.tables import Launch, RosterMember, User


def _member(row: RosterMember) -> Member:
    return Member(
        user_id=row.user_sub,
        roles=tuple(row.roles),
        roles_short=tuple(row.roles_short),
        status=MemberStatus(row.status),
        name=row.name,
        given_name=row.given_name,
        family_name=row.family_name,
        email=row.email,
        username=row.username,
        lis_person_sourcedid=row.lis_person_sourcedid,
    )


def _copy_into(row: RosterMember, member: Member) -> None:
    row.name = member.name
    row.given_name = member.given_name
    row.family_name = member.family_name
    row.email = member.email
    row.username = member.username
    row.lis_person_sourcedid = member.lis_person_sourcedid
    row.roles = list(member.roles)
    row.roles_short = list(member.roles_short)
    row.status = member.status.value


def replace_members(
    session: Session,
    registration_id: int,
    context_id: int,
    members: list[Member],
    now: datetime,
) -> RosterSyncCounts:
    """Make the stored roster of one course what the platform listed.

    Listed members are inserted or updated; stored members the platform no longer lists are
    kept (their launches and outcomes still refer to them) but marked inactive.
    """
    existing = {
        row.user_sub: row
        for row in session.scalars(
            select(RosterMember).where(RosterMember.context_id == context_id)
        )
    }
    added = updated = unchanged = deactivated = 0
    listed: set[str] = set()
    for member in members:
        if member.user_id in listed:
            continue  # a platform that lists someone twice: the first entry wins
        listed.add(member.user_id)
        row = existing.get(member.user_id)
        if row is None:
            row = RosterMember(
                registration_id=registration_id,
                context_id=context_id,
                user_sub=member.user_id,
                first_synced_at=now,
                synced_at=now,
            )
            _copy_into(row, member)
            session.add(row)
            added += 1
            continue
        if _member(row) == member:
            unchanged += 1
        else:
            _copy_into(row, member)
            updated += 1
        row.synced_at = now
    for user_id, row in existing.items():
        if user_id not in listed and row.status == MemberStatus.active.value:
            row.status = MemberStatus.inactive.value
            deactivated += 1
    session.flush()
    return RosterSyncCounts(
        added=added, updated=updated, unchanged=unchanged, deactivated=deactivated
    )


def list_members(
    session: Session, context_id: int, *, include_inactive: bool = True
) -> list[RosterEntry]:
    """The course's members with their last launch, sorted by family name, given name, user id."""
    query = select(RosterMember).where(RosterMember.context_id == context_id)
    if not include_inactive:
        query = query.where(RosterMember.status == MemberStatus.active.value)
    rows = session.scalars(query).all()
    # The last launch of each person in this course (a member's user_id is their launch sub).
    last_launches = {
        subject: as_utc(when)
        for subject, when in session.execute(
            select(User.subject, func.max(Launch.launched_at))
            .join(Launch, Launch.user_id == User.id)
            .where(Launch.context_id == context_id)
            .group_by(User.subject)
        )
        if when is not None
    }
    entries = [
        RosterEntry(
            _member(row),
            as_utc(row.first_synced_at),
            as_utc(row.synced_at),
            last_launches.get(row.user_sub),
        )
        for row in rows
    ]
    entries.sort(
        key=lambda entry: (
            (entry.member.family_name or entry.member.name or "").casefold(),
            (entry.member.given_name or "").casefold(),
            entry.member.user_id,
        )
    )
    return entries
