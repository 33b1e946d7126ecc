"""LTI core repositories: rows of the "LTI core" tables <-> the values of ``core/lti.py``.

Functions flush when they need generated ids but never commit: the caller's transaction does.
Upserts use ``INSERT ... ON CONFLICT`` (SQLite 3.35+ and PostgreSQL) so recording a launch is one
statement per row, whichever process saw the user or course first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import ConflictError, NotFoundError
from adaptive_lti.core.grading import SCOPE_SCORE
from adaptive_lti.core.lti import (
    RESOURCE_LINK_REQUEST,
    CachedKeySet,
    CourseContext,
    CoursePage,
    DeploymentInfo,
    LaunchContext,
    LaunchSummary,
    LoginStateInfo,
    Person,
    PlatformRegistrationInfo,
    RecordedLaunch,
    RegistrationStatus,
    ResourceLinkInfo,
    ToolKeyInfo,
    normalise_role,
)
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
    ToolKey,
    User,
)


def _table(mapped: type[Any]) -> Table:
    """The Core table of a mapped class, for statements that skip the ORM's overhead."""
    table = mapped.__table__
    assert isinstance(table, Table)
    return table


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: every stored time is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


# --- platform registrations ----------------------------------------------------------------


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
        deactivated_at=_as_utc_or_none(row.deactivated_at),
    )


def _key_set(row: Any) -> CachedKeySet:
    return CachedKeySet(
        keys=json.loads(row.jwks_cache) if row.jwks_cache else None,
        fetched_at=_as_utc_or_none(row.jwks_fetched_at),
        expires_at=_as_utc_or_none(row.jwks_expires_at),
        forced_refetch_at=_as_utc_or_none(row.jwks_forced_refetch_at),
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


_REGISTRATION_TABLE = _table(PlatformRegistration)
_DEPLOYMENT_TABLE = _table(Deployment)
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
            deactivated_at=_as_utc_or_none(row.dep_deactivated_at),
        )
    return RegistrationLookup(_registration_info(row), _key_set(row), deployment)


def load_key_set(session: Session, registration_id: int) -> CachedKeySet:
    row = session.get(PlatformRegistration, registration_id)
    if row is None:
        get_registration(session, registration_id)
        raise AssertionError("unreachable")
    return _key_set(row)


def store_key_set(
    session: Session,
    registration_id: int,
    keys: Mapping[str, Any],
    *,
    fetched_at: datetime,
    expires_at: datetime,
    forced: bool,
) -> None:
    values: dict[str, Any] = {
        "jwks_cache": json.dumps(dict(keys)),
        "jwks_fetched_at": fetched_at,
        "jwks_expires_at": expires_at,
    }
    if forced:
        values["jwks_forced_refetch_at"] = fetched_at
    session.execute(
        update(PlatformRegistration)
        .where(PlatformRegistration.id == registration_id)
        .values(**values)
    )


def note_forced_refetch(session: Session, registration_id: int, when: datetime) -> None:
    """Record a forced refetch attempt even when it failed, so the rate limit still applies."""
    session.execute(
        update(PlatformRegistration)
        .where(PlatformRegistration.id == registration_id)
        .values(jwks_forced_refetch_at=when)
    )


# --- deployments ---------------------------------------------------------------------------


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
    _upsert(
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


def resource_link_title(session: Session, resource_link_pk: int) -> str | None:
    """The activity's title as its latest launch gave it (``resource_link.title``)."""
    title = session.scalar(select(ResourceLink.title).where(ResourceLink.id == resource_link_pk))
    return title.strip() if isinstance(title, str) and title.strip() else None


# --- the tool's keys -----------------------------------------------------------------------


def _tool_key_info(row: ToolKey, private_key_pem: str) -> ToolKeyInfo:
    return ToolKeyInfo(
        kid=row.kid,
        public_jwk=dict(row.public_jwk),
        active=row.status == "active",
        created_at=as_utc(row.created_at),
        retired_at=_as_utc_or_none(row.retired_at),
        private_key_pem=private_key_pem,
    )


@dataclass(frozen=True)
class StoredToolKey:
    """A tool key row: the private key is either in the database or in a file named here."""

    info: ToolKeyInfo
    private_key_path: str | None


def list_tool_keys(session: Session, *, active_only: bool = False) -> list[StoredToolKey]:
    query = select(ToolKey).order_by(ToolKey.created_at, ToolKey.kid)
    if active_only:
        query = query.where(ToolKey.status == "active")
    return [
        StoredToolKey(_tool_key_info(row, row.private_key_pem or ""), row.private_key_path)
        for row in session.scalars(query)
    ]


def add_tool_key(
    session: Session,
    *,
    kid: str,
    public_jwk: Mapping[str, Any],
    now: datetime,
    private_key_pem: str | None = None,
    private_key_path: str | None = None,
) -> None:
    session.add(
        ToolKey(
            kid=kid,
            private_key_pem=private_key_pem,
            private_key_path=private_key_path,
            public_jwk=dict(public_jwk),
            status="active",
            created_at=now,
        )
    )
    session.flush()


def retire_tool_key(session: Session, kid: str, now: datetime) -> None:
    row = session.get(ToolKey, kid)
    if row is None:
        raise NotFoundError(
            f"There is no tool key with kid {kid!r}.",
            hint="Use 'adaptive-lti keys list' to see the keys.",
        )
    if row.status != "active":
        raise ConflictError(f"The tool key {kid!r} is already retired.")
    active = session.scalar(
        select(func.count()).select_from(ToolKey).where(ToolKey.status == "active")
    )
    if active is not None and active <= 1:
        raise ConflictError(
            f"The tool key {kid!r} is the only active key; retiring it would leave nothing to sign with.",
            hint="Run 'adaptive-lti keys rotate' first, then retire the old key.",
        )
    row.status = "retired"
    row.retired_at = now
    session.flush()


# --- OIDC login state ----------------------------------------------------------------------


def _login_state_info(row: Any) -> LoginStateInfo:
    return LoginStateInfo(
        state=row.state,
        nonce=row.nonce,
        registration_id=row.registration_id,
        target_link_uri=row.target_link_uri,
        login_hint=row.login_hint,
        lti_message_hint=row.lti_message_hint,
        deployment_hint=row.deployment_hint,
        storage_target=row.storage_target,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )


_LOGIN_STATE_COLUMNS = (
    LoginState.state,
    LoginState.nonce,
    LoginState.registration_id,
    LoginState.target_link_uri,
    LoginState.login_hint,
    LoginState.lti_message_hint,
    LoginState.deployment_hint,
    LoginState.storage_target,
    LoginState.created_at,
    LoginState.expires_at,
)


_LOGIN_STATE_INSERT = insert(_table(LoginState))


def insert_login_state(session: Session, login: LoginStateInfo) -> None:
    session.execute(
        _LOGIN_STATE_INSERT,
        dict(
            state=login.state,
            nonce=login.nonce,
            registration_id=login.registration_id,
            target_link_uri=login.target_link_uri,
            login_hint=login.login_hint,
            lti_message_hint=login.lti_message_hint,
            deployment_hint=login.deployment_hint,
            storage_target=login.storage_target,
            created_at=login.created_at,
            expires_at=login.expires_at,
        ),
    )


def peek_login_state(session: Session, state: str) -> LoginStateInfo | None:
    row = session.execute(
        select(*_LOGIN_STATE_COLUMNS).where(LoginState.state == state)
    ).one_or_none()
    return None if row is None else _login_state_info(row)


_LOGIN_STATE_TABLE = _table(LoginState)
_CONSUME_LOGIN_STATE = (
    delete(_LOGIN_STATE_TABLE)
    .where(_LOGIN_STATE_TABLE.c.state == bindparam("state"))
    .returning(*(_LOGIN_STATE_TABLE.c[column.key] for column in _LOGIN_STATE_COLUMNS))
)


def consume_login_state(session: Session, state: str) -> LoginStateInfo | None:
    """Delete the login and return it, in one statement: two launches racing with the same
    state cannot both get it (the second finds nothing once the first's delete is committed).
    A Core statement: the ORM's bulk-delete machinery costs more than the delete."""
    row = session.execute(_CONSUME_LOGIN_STATE, {"state": state}).one_or_none()
    return None if row is None else _login_state_info(row)


def purge_expired_login_states(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(_LOGIN_STATE_TABLE).where(_LOGIN_STATE_TABLE.c.expires_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- what launches record ------------------------------------------------------------------


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert(
    session: Session,
    table: type[Any],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    update_columns: Sequence[str],
) -> int:
    """INSERT ... ON CONFLICT (conflict) DO UPDATE/NOTHING, returning the row's id.

    The statement is built once per table and column set and reused with new parameters:
    building it (``excluded`` column proxies) costs more than running it."""
    dialect = session.get_bind().dialect.name
    core = _table(table)
    key = (dialect, core.name, tuple(values), tuple(conflict), tuple(update_columns))
    statement = _UPSERTS.get(key)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(core)
        if update_columns:
            statement = base.on_conflict_do_update(
                index_elements=list(conflict),
                set_={column: base.excluded[column] for column in update_columns},
            )
        else:
            statement = base.on_conflict_do_nothing(index_elements=list(conflict))
        statement = statement.returning(core.c.id)
        _UPSERTS[key] = statement
    result = session.execute(statement, dict(values)).scalar_one_or_none()
    if result is None:  # DO NOTHING returned no row: the row was already there
        keys = [core.c[column] == values[column] for column in conflict]
        result = session.execute(select(core.c.id).where(*keys)).scalar_one()
    return int(result)


# Courses and activities are shared by every launch in them: writing their row on each launch
# would make concurrent launches of one course queue on its row lock. Their last_seen_at is
# therefore kept to within this much, and the row is written only when something changed.
LAST_SEEN_RESOLUTION = timedelta(hours=1)
_SELECTS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _ensure_row(
    session: Session,
    table: type[Any],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    update_columns: Sequence[str],
    now: datetime,
) -> int:
    """The id of a shared row, read without a lock; upserted only when new, changed, or when
    its last_seen_at is older than ``LAST_SEEN_RESOLUTION``."""
    core = _table(table)
    compared = tuple(column for column in update_columns if column != "last_seen_at")
    key = (core.name, tuple(conflict), compared)
    query = _SELECTS.get(key)
    if query is None:
        query = select(
            core.c.id, core.c.last_seen_at, *(core.c[column] for column in compared)
        ).where(*(core.c[column] == bindparam(column) for column in conflict))
        _SELECTS[key] = query
    row = session.execute(query, {column: values[column] for column in conflict}).first()
    if (
        row is not None
        and all(getattr(row, column) == values[column] for column in compared)
        and now - as_utc(row.last_seen_at) < LAST_SEEN_RESOLUTION
    ):
        return int(row.id)
    return _upsert(session, table, values, conflict=conflict, update_columns=update_columns)


def _optional_json(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if mapping is None else json.loads(json.dumps(dict(mapping), default=str))


_LAUNCH_INSERT = insert(_table(Launch))


def record_launch(
    session: Session,
    launch: LaunchContext,
    *,
    registration_id: int,
    deployment_pk: int,
    now: datetime,
) -> RecordedLaunch:
    """Upsert the user, context and resource link the launch names and insert the launch."""
    person = launch.person
    user_pk: int | None = None
    if person.subject is not None:
        user_pk = _upsert(
            session,
            User,
            {
                "registration_id": registration_id,
                "subject": person.subject,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "name": person.name,
                "email": person.email,
                "person_sourcedid": person.person_sourcedid,
                "username": person.username,
                "first_seen_at": now,
                "last_seen_at": now,
            },
            conflict=("registration_id", "subject"),
            # The platform is the source of truth for names: keep what it last sent.
            update_columns=(
                "given_name",
                "family_name",
                "name",
                "email",
                "person_sourcedid",
                "username",
                "last_seen_at",
            ),
        )
    context_pk: int | None = None
    if launch.context is not None:
        context_pk = _ensure_row(
            session,
            Context,
            {
                "deployment_id": deployment_pk,
                "context_id": launch.context.id,
                "label": launch.context.label,
                "title": launch.context.title,
                "types": list(launch.context.types),
                "first_seen_at": now,
                "last_seen_at": now,
            },
            conflict=("deployment_id", "context_id"),
            update_columns=("label", "title", "types", "last_seen_at"),
            now=now,
        )
    resource_link_pk: int | None = None
    if launch.resource_link is not None:
        resource_link_pk = _ensure_row(
            session,
            ResourceLink,
            {
                "deployment_id": deployment_pk,
                "context_id": context_pk,
                "resource_link_id": launch.resource_link.id,
                "title": launch.resource_link.title,
                "description": launch.resource_link.description,
                "first_seen_at": now,
                "last_seen_at": now,
            },
            conflict=("deployment_id", "resource_link_id"),
            update_columns=("context_id", "title", "description", "last_seen_at"),
            now=now,
        )
    launch_table = _table(Launch)
    values = dict(
        registration_id=registration_id,
        deployment_id=deployment_pk,
        user_id=user_pk,
        context_id=context_pk,
        resource_link_id=resource_link_pk,
        message_type=launch.message_type,
        target_link_uri=launch.target_link_uri,
        roles=list(launch.role_uris),
        roles_short=list(launch.role_short_names),
        custom=dict(launch.custom),
        locale=launch.locale,
        ags_endpoint=_optional_json(launch.ags_endpoint),
        nrps=_optional_json(launch.nrps),
        deep_linking_settings=_optional_json(launch.deep_linking_settings),
        basic_outcome=_optional_json(launch.basic_outcome),
        ext=_optional_json(launch.ext),
        tool_platform=_optional_json(launch.tool_platform),
        launch_presentation=_optional_json(launch.launch_presentation),
        launched_at=now,
    )
    # A Core INSERT ... RETURNING: the ORM's unit of work costs more than the insert itself.
    launch_id = session.execute(_LAUNCH_INSERT.returning(launch_table.c.id), values).scalar_one()
    return RecordedLaunch(
        launch_id=int(launch_id),
        registration_id=registration_id,
        deployment_pk=deployment_pk,
        user_pk=user_pk,
        context_pk=context_pk,
        resource_link_pk=resource_link_pk,
    )


def launch_context(session: Session, launch_id: int) -> LaunchContext | None:
    """A recorded launch as the typed value it was made from (for pages after the launch).

    Deep linking answers in a second request (the instructor's choice); the settings, the AGS
    claim and who asked are read back from what the launch recorded instead of being carried in
    the form, where they could be altered.
    """
    found = session.execute(
        select(Launch, PlatformRegistration, Deployment, User, Context, ResourceLink)
        .join(PlatformRegistration, PlatformRegistration.id == Launch.registration_id)
        .join(Deployment, Deployment.id == Launch.deployment_id)
        .outerjoin(User, User.id == Launch.user_id)
        .outerjoin(Context, Context.id == Launch.context_id)
        .outerjoin(ResourceLink, ResourceLink.id == Launch.resource_link_id)
        .where(Launch.id == launch_id)
    ).first()
    if found is None:
        return None
    launch, registration, deployment, user, context, link = found
    person = Person(subject=None)
    if user is not None:
        person = Person(
            subject=user.subject,
            given_name=user.given_name,
            family_name=user.family_name,
            name=user.name,
            email=user.email,
            person_sourcedid=user.person_sourcedid,
            username=user.username,
        )
    return LaunchContext(
        issuer=registration.issuer,
        client_id=registration.client_id,
        deployment_id=deployment.deployment_id,
        message_type=launch.message_type,
        target_link_uri=launch.target_link_uri,
        person=person,
        roles=tuple(normalise_role(role) for role in launch.roles),
        context=None
        if context is None
        else CourseContext(context.context_id, context.label, context.title, tuple(context.types)),
        resource_link=None
        if link is None
        else ResourceLinkInfo(link.resource_link_id, link.title, link.description),
        custom=launch.custom,
        locale=launch.locale,
        lis={"person_sourcedid": person.person_sourcedid} if person.person_sourcedid else None,
        ags_endpoint=launch.ags_endpoint,
        nrps=launch.nrps,
        deep_linking_settings=launch.deep_linking_settings,
        basic_outcome=launch.basic_outcome,
        ext=launch.ext,
        tool_platform=launch.tool_platform,
        launch_presentation=launch.launch_presentation,
    )


def course_page(
    session: Session, *, context_pk: int | None, resource_link_pk: int | None, limit: int = 20
) -> CoursePage:
    """The course, the activity and the course's most recent launches (newest first)."""
    context: CourseContext | None = None
    if context_pk is not None:
        row = session.get(Context, context_pk)
        if row is not None:
            context = CourseContext(row.context_id, row.label, row.title, tuple(row.types))
    resource_link: ResourceLinkInfo | None = None
    if resource_link_pk is not None:
        link = session.get(ResourceLink, resource_link_pk)
        if link is not None:
            resource_link = ResourceLinkInfo(link.resource_link_id, link.title, link.description)
    # An activity's page shows that activity's launches; a course page, the course's.
    if resource_link_pk is not None:
        scope = Launch.resource_link_id == resource_link_pk
        scope_name = "activity"
    elif context_pk is not None:
        scope = Launch.context_id == context_pk
        scope_name = "course"
    else:
        return CoursePage(context, resource_link, (), 0, 0)
    rows = session.execute(
        select(Launch, User, ResourceLink.title)
        .outerjoin(User, User.id == Launch.user_id)
        .outerjoin(ResourceLink, ResourceLink.id == Launch.resource_link_id)
        .where(scope)
        .order_by(Launch.launched_at.desc(), Launch.id.desc())
        .limit(limit)
    ).all()
    summaries = []
    for launch_row, user_row, link_title in rows:
        person = Person(
            subject=None if user_row is None else user_row.subject,
            given_name=None if user_row is None else user_row.given_name,
            family_name=None if user_row is None else user_row.family_name,
            name=None if user_row is None else user_row.name,
            email=None if user_row is None else user_row.email,
        )
        summaries.append(
            LaunchSummary(
                launch_id=launch_row.id,
                launched_at=as_utc(launch_row.launched_at),
                user_display_name=person.display_name,
                roles_short=tuple(launch_row.roles_short),
                message_type=launch_row.message_type,
                resource_link_title=link_title,
            )
        )
    launch_count = session.scalar(select(func.count()).select_from(Launch).where(scope)) or 0
    person_count = (
        session.scalar(
            select(func.count(func.distinct(Launch.user_id))).where(
                scope, Launch.user_id.is_not(None)
            )
        )
        or 0
    )
    grades = "unknown"
    if resource_link_pk is not None:
        latest = session.scalars(
            select(Launch.ags_endpoint)
            .where(
                Launch.resource_link_id == resource_link_pk,
                Launch.message_type == RESOURCE_LINK_REQUEST,
            )
            .order_by(Launch.launched_at.desc(), Launch.id.desc())
            .limit(1)
        ).all()
        if latest:
            grades = _grade_acceptance(latest[0])
    return CoursePage(
        context,
        resource_link,
        tuple(summaries),
        launch_count,
        person_count,
        scope=scope_name,
        grades=grades,
    )


def _grade_acceptance(ags_endpoint: Mapping[str, Any] | None) -> str:
    """AGS 2.0 §3.1: a launch that may be graded carries the endpoint claim with the score scope;
    its ``lineitem`` is the activity's own column (Moodle sends none when the activity does not
    accept grades from the tool)."""
    if not isinstance(ags_endpoint, Mapping):
        return "declined"
    scopes = ags_endpoint.get("scope")
    if not isinstance(scopes, list) or SCOPE_SCORE not in scopes:
        return "declined"
    if isinstance(ags_endpoint.get("lineitem"), str) and ags_endpoint["lineitem"]:
        return "activity-column"
    if isinstance(ags_endpoint.get("lineitems"), str) and ags_endpoint["lineitems"]:
        return "tool-column"
    return "declined"
