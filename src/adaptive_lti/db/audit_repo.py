"""The audit record: append one entry per administrative or instructor action, and list them.

Entries are written with ``append`` in the session of the action itself, so they commit with it
and a failed action (rolled back) leaves none. Nothing here updates or deletes an entry. Listing
takes the tenant explicitly: a registration id, or ``ALL_TENANTS`` for the administrator's view of
the whole tool (tool-wide actions, such as key rotation, have no registration).

Who acted is an ``Actor``: a platform user (their ``sub`` and name) or the command line
(``cli:<os user>``). A transaction may carry its actor (``act_as``, set where the request or
command is authenticated) for the actions whose service knows only a name (``acting``).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.lti import Person
from adaptive_lti.db.grades_repo import as_utc
from adaptive_lti.db.tables import AuditRecord, User

ALL_TENANTS: Final = "all"
Tenant = int | Literal["all"]

_ACTOR_KEY = "adaptive_lti.audit_actor"
MAX_NAME = 500


class AuditAction(StrEnum):
    """Every action the audit record knows, by the name it is stored and filtered under."""

    design_publish = "design.publish"
    design_import = "design.import"
    design_export = "design.export"
    binding_instructor = "binding.instructor"
    binding_deep_link = "binding.deep-link"
    learner_move = "learner.move"
    learner_reset = "learner.reset"
    learner_export = "learner.export"
    learner_forget = "learner.forget"
    roster_sync = "roster.sync"
    scores_retry = "scores.retry"
    registration_add = "registration.add"
    registration_approve = "registration.approve"
    registration_remove = "registration.remove"
    registration_update = "registration.update"
    deployment_activate = "deployment.activate"
    deployment_deactivate = "deployment.deactivate"
    deployment_remove = "deployment.remove"
    key_rotate = "key.rotate"
    key_retire = "key.retire"


@dataclass(frozen=True)
class Actor:
    """Who acted: a platform user (``subject`` and name) or the command line (no subject)."""

    name: str
    subject: str | None = None

    @classmethod
    def of_person(cls, person: Person) -> Actor:
        return cls(name=person.display_name, subject=person.subject)

    @classmethod
    def command_line(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(name=f"cli:{user}")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: Actor
    registration_id: int | None
    action: str
    target: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat(),
            "actor_subject": self.actor.subject,
            "actor_name": self.actor.name,
            "registration_id": self.registration_id,
            "action": self.action,
            "target": self.target,
            "details": self.details,
        }


def act_as(session: Session, actor: Actor) -> None:
    """Make ``actor`` the one who acts in this session's transaction (see ``acting``)."""
    session.info[_ACTOR_KEY] = actor


def acting(session: Session, name: str) -> Actor:
    """The actor set with ``act_as``, or one known only by ``name`` (a service given a name)."""
    actor = session.info.get(_ACTOR_KEY)
    return actor if isinstance(actor, Actor) else Actor(name=name)


def actor_of_user(session: Session, user_pk: int | None) -> Actor:
    """The platform user ``user_pk`` (a tool session's user) as an actor."""
    user = session.get(User, user_pk) if user_pk is not None else None
    if user is None:
        return acting(session, "an instructor")
    name = user.name or " ".join(p for p in (user.given_name, user.family_name) if p)
    return Actor(name=name or f"User {user.subject}", subject=user.subject)


def append(
    session: Session,
    actor: Actor,
    action: AuditAction,
    registration_id: int | None,
    target: str,
    details: dict[str, Any] | None = None,
    *,
    now: datetime,
) -> AuditEntry:
    """Add an entry to the session's transaction (flushed, never committed).

    A registration id out of the database's integer range (a mistyped command-line argument)
    is refused with ``InvalidInputError``, which takes the action back with it."""
    if registration_id is not None and not 0 < registration_id < 2**31:
        raise InvalidInputError(
            f"{registration_id} is not a registration id.",
            hint="See 'adaptive-lti platform list' for the registrations' ids.",
        )
    row = AuditRecord(
        occurred_at=now,
        actor_subject=actor.subject,
        actor_name=actor.name[:MAX_NAME],
        registration_id=registration_id,
        action=action.value,
        target=target,
        details=dict(details or {}),
    )
    session.add(row)
    session.flush()
    return _entry(row)


def _entry(row: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=as_utc(row.occurred_at),
        actor=Actor(name=row.actor_name, subject=row.actor_subject),
        registration_id=row.registration_id,
        action=row.action,
        target=row.target,
        details=dict(row.details),
    )


def list_entries(
    session: Session,
    tenant: Tenant,
    *,
    since: datetime | None = None,
    actions: tuple[str, ...] = (),
    limit: int | None = None,
) -> list[AuditEntry]:
    """The entries of one registration (``tenant``), or of the whole tool (``ALL_TENANTS``),
    oldest first; ``since`` and ``actions`` narrow them, ``limit`` keeps the newest ones."""
    statement = select(AuditRecord)
    if tenant != ALL_TENANTS:
        statement = statement.where(AuditRecord.registration_id == tenant)
    if since is not None:
        statement = statement.where(AuditRecord.occurred_at >= since)
    if actions:
        statement = statement.where(AuditRecord.action.in_(actions))
    statement = statement.order_by(AuditRecord.occurred_at.desc(), AuditRecord.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    rows = session.scalars(statement).all()
    return [_entry(row) for row in reversed(rows)]


def entries_by_actor(session: Session, registration_id: int, subject: str) -> list[AuditEntry]:
    """What one platform user of a registration did, as the audit record has it, oldest first
    (part of what an access request returns)."""
    rows = session.scalars(
        select(AuditRecord)
        .where(AuditRecord.registration_id == registration_id)
        .where(AuditRecord.actor_subject == subject)
        .order_by(AuditRecord.occurred_at, AuditRecord.id)
    )
    return [_entry(row) for row in rows]
