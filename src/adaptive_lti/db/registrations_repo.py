"""Platform registrations and their deployments: rows <-> ``PlatformRegistrationInfo`` and
``DeploymentInfo``.

Adding, listing, finding (by id, by issuer and client id, and for a launch together with its
deployment in one statement), updating, suspending and removing a registration; a deployment the
tool has not been told about is recorded inactive on its first launch, so an administrator can
allow it. Functions flush when they need generated ids but never commit: the caller's
transaction does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import ConflictError, NotFoundError
from adaptive_lti.core.lti import (
    CachedKeySet,
    DeploymentInfo,
    PlatformRegistrationInfo,
    RegistrationStatus,
)
from adaptive_lti.db.base import as_utc, as_utc_or_none, core_table, upsert
from adaptive_lti.db.tables import (
    Context,
    Deployment,
    DesignBinding,
    DesignDeepLink,
    Launch,
    LearnerEnrolment,
    LearnerEvent,
    LineItem,
    LoginState,
    PlatformRegistration,
    ResourceLink,
    RosterMember,
    ScoreOutbox,
    ServiceAccessToken,
    User,
)


def _registration_info(row: Any) -> PlatformRegistrationInfo:
    # An ORM row or a Core row of the registration table: the same attribute names.
    return PlatformRegistrationInfo(
        id=row.id,
        issuer=row.issuer,
        client_id=row.client_id,
        name=row.name,
        auth_login_url=row.auth_login_url,
        auth_token_url=row.auth_token_url,
        auth_token_audience=row.auth_token_audience,
        jwks_url=row.jwks_url,
        static_jwks=json.loads(row.static_jwks) if row.static_jwks else None,
        status=RegistrationStatus(row.status),
        created_at=as_utc(row.created_at),
    )


def _deployment_info(row: Deployment) -> DeploymentInfo:
    return DeploymentInfo(
        id=row.id,
        registration_id=row.registration_id,
        deployment_id=row.deployment_id,
        active=row.active,
        created_at=as_utc(row.created_at),
        deactivated_at=as_utc_or_none(row.deactivated_at),
    )


def key_set(row: Any) -> CachedKeySet:
    return CachedKeySet(
        keys=json.loads(row.jwks_cache) if row.jwks_cache else None,
        fetched_at=as_utc_or_none(row.jwks_fetched_at),
        expires_at=as_utc_or_none(row.jwks_expires_at),
        forced_refetch_at=as_utc_or_none(row.jwks_forced_refetch_at),
    )


def add_registration(
    session: Session,
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    now: datetime,
    jwks_url: str | None = None,
    static_jwks: Mapping[str, Any] | None = None,
    auth_token_audience: str | None = None,
    name: str = "",
    status: RegistrationStatus = RegistrationStatus.active,
    deployment_ids: Sequence[str] = (),
) -> PlatformRegistrationInfo:
    """Add a registration and its deployments; a duplicate (issuer, client_id) is a conflict."""
    if not jwks_url and not static_jwks:
        raise ConflictError(
            "A registration needs the platform's JWKS URL or a static key set.",
            hint="Give --jwks-url (Moodle: <site>/mod/lti/certs.php) or --jwks-file.",
        )
    row = PlatformRegistration(
        issuer=issuer,
        client_id=client_id,
        name=name,
        auth_login_url=auth_login_url,
        auth_token_url=auth_token_url,
        auth_token_audience=auth_token_audience,
        jwks_url=jwks_url,
        static_jwks=json.dumps(dict(static_jwks)) if static_jwks else None,
        status=status.value,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"The platform {issuer!r} with client id {client_id!r} is already registered.",
            hint="Use 'adaptive-lti platform list' to see it, or remove it first.",
        ) from None
    for deployment_id in dict.fromkeys(deployment_ids):
        add_deployment(session, row.id, deployment_id, active=True, now=now)
    return _registration_info(row)


def list_registrations(session: Session) -> list[PlatformRegistrationInfo]:
    rows = session.scalars(select(PlatformRegistration).order_by(PlatformRegistration.id))
    return [_registration_info(row) for row in rows]


def get_registration(session: Session, registration_id: int) -> PlatformRegistrationInfo:
    row = session.get(PlatformRegistration, registration_id)
    if row is None:
        raise NotFoundError(
            f"There is no platform registration with id {registration_id}.",
            hint="Use 'adaptive-lti platform list' to see the registrations and their ids.",
        )
    return _registration_info(row)


def find_registration(
    session: Session, issuer: str, client_id: str
) -> PlatformRegistrationInfo | None:
    row = session.scalars(
        select(PlatformRegistration).where(
            PlatformRegistration.issuer == issuer, PlatformRegistration.client_id == client_id
        )
    ).one_or_none()
    return None if row is None else _registration_info(row)


def registrations_for_issuer(session: Session, issuer: str) -> list[PlatformRegistrationInfo]:
    rows = session.scalars(
        select(PlatformRegistration)
        .where(PlatformRegistration.issuer == issuer)
        .order_by(PlatformRegistration.id)
    )
    return [_registration_info(row) for row in rows]


def set_registration_status(
    session: Session, registration_id: int, status: RegistrationStatus
) -> PlatformRegistrationInfo:
    row = session.get(PlatformRegistration, registration_id)
    if row is None:
        get_registration(session, registration_id)  # raises the clear NotFoundError
        raise AssertionError("unreachable")
    row.status = status.value
    session.flush()
    return _registration_info(row)


_UNCHANGED: Any = object()


def update_registration(
    session: Session,
    registration_id: int,
    *,
    client_id: str | None = None,
    auth_login_url: str | None = None,
    auth_token_url: str | None = None,
    auth_token_audience: str | None = _UNCHANGED,
    jwks_url: str | None = None,
    static_jwks: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> PlatformRegistrationInfo:
    """Change a registration's client id, endpoints, key set or name in place (None:
    unchanged; the token audience takes None to clear it). A new JWKS URL drops the cached key
    set and any static one; a static key set replaces the JWKS URL."""
    if jwks_url is not None and static_jwks is not None:
        raise ConflictError(
            "A registration has a JWKS URL or a static key set, not both.",
            hint="Give --jwks-url or --jwks-file, not both.",
        )
    row = session.get(PlatformRegistration, registration_id)
    if row is None:
        get_registration(session, registration_id)
        raise AssertionError("unreachable")
    changes: dict[str, Any] = {
        "client_id": client_id,
        "auth_login_url": auth_login_url,
        "auth_token_url": auth_token_url,
        "jwks_url": jwks_url,
        "name": name,
    }
    if jwks_url is not None and (jwks_url != row.jwks_url or row.static_jwks):
        # Another key set: the cached one is not the platform's any more.
        row.static_jwks = None
        row.jwks_cache = None
        row.jwks_fetched_at = None
        row.jwks_expires_at = None
    if static_jwks is not None:
        row.static_jwks = json.dumps(dict(static_jwks))
        row.jwks_url = None
        row.jwks_cache = None
        row.jwks_fetched_at = None
        row.jwks_expires_at = None
    for column, value in changes.items():
        if value is not None:
            setattr(row, column, value)
    if auth_token_audience is not _UNCHANGED:
        row.auth_token_audience = auth_token_audience
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"Another registration of {row.issuer!r} has client id {client_id!r} already.",
            hint="Use 'adaptive-lti platform list' to see it; remove one of the two first.",
        ) from None
    if client_id is not None:
        # Access tokens were issued to the old client id.
        session.execute(
            delete(ServiceAccessToken).where(ServiceAccessToken.registration_id == registration_id)
        )
    return _registration_info(row)


@dataclass(frozen=True)
class RegistrationContents:
    """What is recorded under a registration, counted: what removing it would delete."""

    deployments: int
    users: int
    courses: int
    activities: int
    launches: int
    design_bindings: int
    enrolments: int
    learner_events: int
    line_items: int
    scores: int
    roster_members: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def registration_contents(session: Session, registration_id: int) -> RegistrationContents:
    get_registration(session, registration_id)

    def count(statement: Any) -> int:
        return int(session.scalar(statement) or 0)

    deployment_ids = select(Deployment.id).where(Deployment.registration_id == registration_id)
    enrolment_ids = select(LearnerEnrolment.id).where(
        LearnerEnrolment.registration_id == registration_id
    )

    def of(table: Any) -> int:
        return count(
            select(func.count()).select_from(table).where(table.registration_id == registration_id)
        )

    return RegistrationContents(
        deployments=of(Deployment),
        users=of(User),
        courses=count(
            select(func.count())
            .select_from(Context)
            .where(Context.deployment_id.in_(deployment_ids))
        ),
        activities=count(
            select(func.count())
            .select_from(ResourceLink)
            .where(ResourceLink.deployment_id.in_(deployment_ids))
        ),
        launches=of(Launch),
        design_bindings=of(DesignBinding) + of(DesignDeepLink),
        enrolments=of(LearnerEnrolment),
        learner_events=count(
            select(func.count())
            .select_from(LearnerEvent)
            .where(LearnerEvent.enrolment_id.in_(enrolment_ids))
        ),
        line_items=of(LineItem),
        scores=of(ScoreOutbox),
        roster_members=of(RosterMember),
    )


def remove_registration(session: Session, registration_id: int) -> PlatformRegistrationInfo:
    """Remove a registration and everything recorded under it (deployments, users, launches)."""
    info = get_registration(session, registration_id)
    # Delete children explicitly: SQLite only cascades when foreign keys are switched on.
    deployment_ids = select(Deployment.id).where(Deployment.registration_id == registration_id)
    session.execute(delete(Launch).where(Launch.registration_id == registration_id))
    session.execute(delete(ResourceLink).where(ResourceLink.deployment_id.in_(deployment_ids)))
    session.execute(delete(Context).where(Context.deployment_id.in_(deployment_ids)))
    session.execute(delete(User).where(User.registration_id == registration_id))
    session.execute(delete(LoginState).where(LoginState.registration_id == registration_id))
    session.execute(delete(Deployment).where(Deployment.registration_id == registration_id))
    session.execute(delete(PlatformRegistration).where(PlatformRegistration.id == registration_id))
    return info


@dataclass(frozen=True)
class RegistrationLookup:
    """A registration with its cached key set and, when asked for, one of its deployments."""

    registration: PlatformRegistrationInfo
    key_set: CachedKeySet
    deployment: DeploymentInfo | None


_REGISTRATION_TABLE = core_table(PlatformRegistration)


_DEPLOYMENT_TABLE = core_table(Deployment)


_DEPLOYMENT_COLUMNS = [
    _DEPLOYMENT_TABLE.c.id.label("dep_pk"),
    _DEPLOYMENT_TABLE.c.deployment_id.label("dep_deployment_id"),
    _DEPLOYMENT_TABLE.c.active.label("dep_active"),
    _DEPLOYMENT_TABLE.c.created_at.label("dep_created_at"),
    _DEPLOYMENT_TABLE.c.deactivated_at.label("dep_deactivated_at"),
]


_LOOKUP_WITH_DEPLOYMENT = (
    select(_REGISTRATION_TABLE, *_DEPLOYMENT_COLUMNS)
    .outerjoin(
        _DEPLOYMENT_TABLE,
        (_DEPLOYMENT_TABLE.c.registration_id == _REGISTRATION_TABLE.c.id)
        & (_DEPLOYMENT_TABLE.c.deployment_id == bindparam("deployment_id")),
    )
    .where(
        _REGISTRATION_TABLE.c.issuer == bindparam("issuer"),
        _REGISTRATION_TABLE.c.client_id == bindparam("client_id"),
    )
)


def lookup_registration(
    session: Session, issuer: str, client_id: str, deployment_id: str | None
) -> RegistrationLookup | None:
    """One round trip: the registration, its JWKS cache and the named deployment (if any).

    A prepared Core select: launches and logins run it every time, and ORM entity loading
    would cost more than the query."""
    row = session.execute(
        _LOOKUP_WITH_DEPLOYMENT,
        {"issuer": issuer, "client_id": client_id, "deployment_id": deployment_id},
    ).first()
    if row is None:
        return None
    deployment = None
    if row.dep_pk is not None:
        deployment = DeploymentInfo(
            id=row.dep_pk,
            registration_id=row.id,
            deployment_id=row.dep_deployment_id,
            active=bool(row.dep_active),
            created_at=as_utc(row.dep_created_at),
            deactivated_at=as_utc_or_none(row.dep_deactivated_at),
        )
    return RegistrationLookup(_registration_info(row), key_set(row), deployment)


def _deployment_row(
    session: Session, registration_id: int, deployment_id: str
) -> Deployment | None:
    return session.scalars(
        select(Deployment).where(
            Deployment.registration_id == registration_id,
            Deployment.deployment_id == deployment_id,
        )
    ).one_or_none()


def _unknown_deployment(registration_id: int, deployment_id: str) -> NotFoundError:
    return NotFoundError(
        f"Deployment {deployment_id!r} is not known for registration {registration_id}.",
        hint="Use 'adaptive-lti platform show ID' to see its deployments.",
    )


def list_deployments(session: Session, registration_id: int) -> list[DeploymentInfo]:
    rows = session.scalars(
        select(Deployment)
        .where(Deployment.registration_id == registration_id)
        .order_by(Deployment.id)
    )
    return [_deployment_info(row) for row in rows]


def find_deployment(
    session: Session, registration_id: int, deployment_id: str
) -> DeploymentInfo | None:
    row = _deployment_row(session, registration_id, deployment_id)
    return None if row is None else _deployment_info(row)


def add_deployment(
    session: Session, registration_id: int, deployment_id: str, *, active: bool, now: datetime
) -> DeploymentInfo:
    row = Deployment(
        registration_id=registration_id,
        deployment_id=deployment_id,
        active=active,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"Deployment {deployment_id!r} is already known for registration {registration_id}.",
            hint="Use 'adaptive-lti platform show ID' to see its deployments.",
        ) from None
    return _deployment_info(row)


def record_inactive_deployment(
    session: Session, registration_id: int, deployment_id: str, now: datetime
) -> DeploymentInfo:
    """Note an unknown deployment as inactive (idempotent: concurrent launches both succeed)."""
    upsert(
        session,
        Deployment,
        {
            "registration_id": registration_id,
            "deployment_id": deployment_id,
            "active": False,
            "created_at": now,
        },
        conflict=("registration_id", "deployment_id"),
        update_columns=(),
    )
    found = find_deployment(session, registration_id, deployment_id)
    assert found is not None
    return found


def set_deployment_active(
    session: Session, registration_id: int, deployment_id: str, *, active: bool, now: datetime
) -> DeploymentInfo:
    """Activate (creating it if needed) or deactivate one deployment."""
    row = _deployment_row(session, registration_id, deployment_id)
    if row is None:
        if not active:
            raise _unknown_deployment(registration_id, deployment_id)
        get_registration(session, registration_id)
        return add_deployment(session, registration_id, deployment_id, active=True, now=now)
    if row.active and not active:
        row.deactivated_at = now
    elif active:
        row.deactivated_at = None
    row.active = active
    session.flush()
    return _deployment_info(row)


def remove_deployment(session: Session, registration_id: int, deployment_id: str) -> None:
    row = _deployment_row(session, registration_id, deployment_id)
    if row is None:
        raise _unknown_deployment(registration_id, deployment_id)
    session.execute(delete(Launch).where(Launch.deployment_id == row.id))
    session.execute(delete(ResourceLink).where(ResourceLink.deployment_id == row.id))
    session.execute(delete(Context).where(Context.deployment_id == row.id))
    session.delete(row)
    session.flush()
