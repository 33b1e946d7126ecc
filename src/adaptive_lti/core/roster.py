"""Course members as values (LTI Names and Role Provisioning Services 2.0, §2.2 members)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MemberStatus(StrEnum):
    """NRPS 2.0 §2.2 ``status``; a member missing from the latest sync becomes ``inactive``."""

    active = "active"
    inactive = "inactive"
    deleted = "deleted"

    @classmethod
    def from_platform(cls, raw: object) -> MemberStatus:
        """``Active``/``Inactive``/``Deleted`` (any case); absent means active (§2.2)."""
        if not isinstance(raw, str) or not raw.strip():
            return cls.active
        try:
            return cls(raw.strip().lower())
        except ValueError:
            return cls.active


@dataclass(frozen=True)
class Member:
    """One member of a course, as the platform lists it. ``user_id`` equals their launch ``sub``."""

    user_id: str
    roles: tuple[str, ...]
    roles_short: tuple[str, ...]
    status: MemberStatus = MemberStatus.active
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    username: str | None = None
    lis_person_sourcedid: str | None = None


@dataclass(frozen=True)
class RosterEntry:
    """A stored member, when the tool last saw them in a sync, and their last launch of the
    tool in this course (None: they never launched it)."""

    member: Member
    first_synced_at: datetime
    synced_at: datetime
    last_launched_at: datetime | None = None

    @property
    def has_launched(self) -> bool:
        return self.last_launched_at is not None


@dataclass(frozen=True)
class RosterSyncCounts:
    """What one sync changed: new members, changed ones, unchanged ones, and members who were
    no longer listed and were marked inactive."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0

    @property
    def listed(self) -> int:
        return self.added + self.updated + self.unchanged
