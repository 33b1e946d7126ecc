"""Designs repository: rows of the "Designs" tables <-> the values of ``core/catalogue.py``.

Every function takes the tenant (``core.catalogue.Tenant``: a platform registration) and builds its
statements from it: a design, its versions, owners, bindings and deep-link offers are one tenant's,
and another tenant's design of the same id is another design.

Functions flush but never commit. Inserts that may race (two processes publishing the same version,
two first launches of the same activity) run in a savepoint or ``ON CONFLICT DO NOTHING`` and read
back what won, so the loser sees the winner's row instead of an integrity error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from adaptive_lti.core.catalogue import (
    BindingMethod,
    DeepLinkOffer,
    DesignOwnerInfo,
    DesignSummary,
    DesignVersionInfo,
    LintSummary,
    ResourceLinkBindingInfo,
    Tenant,
)
from adaptive_lti.db.base import as_utc
from adaptive_lti.db.tables import (
    Design,
    DesignBinding,
    DesignDeepLink,
    DesignOwner,
    DesignVersion,
)

# --- design versions ---------------------------------------------------------------------------


def _version_info(row: DesignVersion, *, with_source: bool = True) -> DesignVersionInfo:
    return DesignVersionInfo(
        design_id=row.design_id,
        version=row.version,
        title=row.title,
        content_hash=row.content_hash,
        lint=LintSummary.from_json(row.lint_summary),
        sends_grade=row.sends_grade,
        published_at=as_utc(row.published_at),
        published_by=row.published_by,
        source_text=row.source if with_source else "",
        page_bodies=dict(row.page_bodies) if with_source else {},
    )


def _versions(tenant: Tenant, *, with_source: bool) -> Select[DesignVersion]:
    # A design file may be megabytes: leave the text in the database unless it is asked for.
    query = select(DesignVersion).where(DesignVersion.registration_id == tenant.registration_id)
    if not with_source:
        query = query.options(defer(DesignVersion.source), defer(DesignVersion.page_bodies))
    return query


def find_version(
    session: Session, tenant: Tenant, design_id: str, version: int, *, with_source: bool = True
) -> DesignVersionInfo | None:
    row = session.scalars(
        _versions(tenant, with_source=with_source).where(
            DesignVersion.design_id == design_id, DesignVersion.version == version
        )
    ).one_or_none()
    return None if row is None else _version_info(row, with_source=with_source)


def latest_version(
    session: Session, tenant: Tenant, design_id: str, *, with_source: bool = True
) -> DesignVersionInfo | None:
    row = session.scalars(
        _versions(tenant, with_source=with_source)
        .where(DesignVersion.design_id == design_id)
        .order_by(DesignVersion.version.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _version_info(row, with_source=with_source)


def version_source(
    session: Session, tenant: Tenant, design_id: str, version: int
) -> tuple[str, dict[str, str]] | None:
    """Only the text of one version: its YAML and its page files."""
    row = session.execute(
        select(DesignVersion.source, DesignVersion.page_bodies).where(
            DesignVersion.registration_id == tenant.registration_id,
            DesignVersion.design_id == design_id,
            DesignVersion.version == version,
        )
    ).one_or_none()
    return None if row is None else (row.source, dict(row.page_bodies))


def list_versions(session: Session, tenant: Tenant, design_id: str) -> list[DesignVersionInfo]:
    """Every published version of one design, newest first, without their sources."""
    rows = session.scalars(
        _versions(tenant, with_source=False)
        .where(DesignVersion.design_id == design_id)
        .order_by(DesignVersion.version.desc())
    )
    return [_version_info(row, with_source=False) for row in rows]


def design_exists(session: Session, tenant: Tenant, design_id: str) -> bool:
    return session.get(Design, (tenant.registration_id, design_id)) is not None


def insert_version(
    session: Session,
    tenant: Tenant,
    *,
    design_id: str,
    version: int,
    title: str,
    source_text: str,
    page_bodies: Mapping[str, str],
    content_hash: str,
    lint: LintSummary,
    sends_grade: bool,
    published_by: str,
    now: datetime,
) -> DesignVersionInfo | None:
    """Store a new version; None when that (design, version) was stored meanwhile (a race)."""
    key = (tenant.registration_id, design_id)
    design = session.get(Design, key)
    if design is None:
        design = Design(
            registration_id=tenant.registration_id,
            design_id=design_id,
            title=title,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(design)
                session.flush()
        except IntegrityError:
            # Another process created the design first: use its row.
            design = session.get(Design, key)
            assert design is not None
    row = DesignVersion(
        registration_id=tenant.registration_id,
        design_id=design_id,
        version=version,
        title=title,
        source=source_text,
        page_bodies=dict(page_bodies),
        content_hash=content_hash,
        lint_summary=lint.to_json(),
        sends_grade=sends_grade,
        published_at=now,
        published_by=published_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    newest = session.scalar(
        select(func.max(DesignVersion.version)).where(
            DesignVersion.registration_id == tenant.registration_id,
            DesignVersion.design_id == design_id,
        )
    )
    if newest is None or version >= newest:
        # The catalogue shows the title of the newest version, whatever order they came in.
        design.title = title
    design.updated_at = now
    session.flush()
    return _version_info(row)


def list_designs(session: Session, tenant: Tenant) -> list[DesignSummary]:
    """Every design of the tenant with its newest version, by design id."""
    newest = (
        select(
            DesignVersion.design_id,
            func.max(DesignVersion.version).label("latest"),
            func.count().label("count"),
        )
        .where(DesignVersion.registration_id == tenant.registration_id)
        .group_by(DesignVersion.design_id)
        .subquery()
    )
    rows = session.execute(
        select(DesignVersion, newest.c.count)
        .options(defer(DesignVersion.source), defer(DesignVersion.page_bodies))
        .where(DesignVersion.registration_id == tenant.registration_id)
        .join(
            newest,
            (newest.c.design_id == DesignVersion.design_id)
            & (newest.c.latest == DesignVersion.version),
        )
        .order_by(DesignVersion.design_id)
    ).all()
    return [
        DesignSummary(
            design_id=row.design_id,
            title=row.title,
            latest_version=row.version,
            version_count=int(count),
            latest=_version_info(row, with_source=False),
        )
        for row, count in rows
    ]


# --- owners ------------------------------------------------------------------------------------


def list_owners(session: Session, tenant: Tenant, design_id: str) -> list[DesignOwnerInfo]:
    rows = session.scalars(
        select(DesignOwner)
        .where(
            DesignOwner.registration_id == tenant.registration_id,
            DesignOwner.design_id == design_id,
        )
        .order_by(DesignOwner.granted_at, DesignOwner.subject)
    )
    return [
        DesignOwnerInfo(row.design_id, row.subject, row.name, as_utc(row.granted_at))
        for row in rows
    ]


def is_owner(session: Session, tenant: Tenant, design_id: str, subject: str) -> bool:
    return session.get(DesignOwner, (tenant.registration_id, design_id, subject)) is not None


def add_owner(
    session: Session, tenant: Tenant, design_id: str, *, subject: str, name: str, now: datetime
) -> bool:
    """Make a platform user an owner of the tenant's design; False when they were already."""
    if is_owner(session, tenant, design_id, subject):
        return False
    try:
        with session.begin_nested():
            session.add(
                DesignOwner(
                    registration_id=tenant.registration_id,
                    design_id=design_id,
                    subject=subject,
                    name=name,
                    granted_at=now,
                )
            )
            session.flush()
    except IntegrityError:  # made owner by a concurrent request
        return False
    return True


# --- resource-link bindings --------------------------------------------------------------------


def _binding_info(row: DesignBinding) -> ResourceLinkBindingInfo:
    return ResourceLinkBindingInfo(
        id=row.id,
        registration_id=row.registration_id,
        deployment_pk=row.deployment_id,
        resource_link_id=row.resource_link_id,
        context_id=row.context_id,
        design_id=row.design_id,
        pinned_version=row.pinned_version,
        bound_by=row.bound_by,
        method=BindingMethod(row.method),
        bound_at=as_utc(row.bound_at),
    )


def find_binding(
    session: Session, tenant: Tenant, deployment_pk: int, resource_link_id: str
) -> ResourceLinkBindingInfo | None:
    row = session.scalars(
        select(DesignBinding).where(
            DesignBinding.registration_id == tenant.registration_id,
            DesignBinding.deployment_id == deployment_pk,
            DesignBinding.resource_link_id == resource_link_id,
        )
    ).one_or_none()
    return None if row is None else _binding_info(row)


def insert_binding_if_absent(
    session: Session,
    tenant: Tenant,
    *,
    deployment_pk: int,
    resource_link_id: str,
    context_id: str | None,
    design_id: str,
    pinned_version: int | None,
    bound_by: str,
    method: BindingMethod,
    now: datetime,
) -> tuple[ResourceLinkBindingInfo, bool]:
    """Bind the activity unless it is bound already; (the binding that holds, created?)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(DesignBinding)
        .values(
            registration_id=tenant.registration_id,
            deployment_id=deployment_pk,
            resource_link_id=resource_link_id,
            context_id=context_id,
            design_id=design_id,
            pinned_version=pinned_version,
            bound_by=bound_by,
            method=method.value,
            bound_at=now,
        )
        .on_conflict_do_nothing(index_elements=["deployment_id", "resource_link_id"])
        .returning(DesignBinding.id)
    )
    created_id = session.execute(statement).scalar_one_or_none()
    found = find_binding(session, tenant, deployment_pk, resource_link_id)
    assert found is not None
    return found, created_id is not None


def set_binding(
    session: Session,
    tenant: Tenant,
    *,
    deployment_pk: int,
    resource_link_id: str,
    context_id: str | None,
    design_id: str,
    pinned_version: int | None,
    bound_by: str,
    method: BindingMethod,
    now: datetime,
) -> ResourceLinkBindingInfo:
    """Bind the activity, replacing whatever design it was bound to."""
    binding, created = insert_binding_if_absent(
        session,
        tenant,
        deployment_pk=deployment_pk,
        resource_link_id=resource_link_id,
        context_id=context_id,
        design_id=design_id,
        pinned_version=pinned_version,
        bound_by=bound_by,
        method=method,
        now=now,
    )
    if created:
        return binding
    row = session.get(DesignBinding, binding.id)
    assert row is not None
    row.context_id = context_id
    row.design_id = design_id
    row.pinned_version = pinned_version
    row.bound_by = bound_by
    row.method = method.value
    row.bound_at = now
    session.flush()
    return _binding_info(row)


def list_bindings(
    session: Session, tenant: Tenant, design_id: str
) -> list[ResourceLinkBindingInfo]:
    rows = session.scalars(
        select(DesignBinding)
        .where(
            DesignBinding.registration_id == tenant.registration_id,
            DesignBinding.design_id == design_id,
        )
        .order_by(DesignBinding.bound_at, DesignBinding.id)
    )
    return [_binding_info(row) for row in rows]


# --- deep-link offers --------------------------------------------------------------------------


def _offer_info(row: DesignDeepLink) -> DeepLinkOffer:
    return DeepLinkOffer(
        id=row.id,
        registration_id=row.registration_id,
        deployment_pk=row.deployment_id,
        context_id=row.context_id,
        design_id=row.design_id,
        pinned_version=row.pinned_version,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def add_deep_link_offer(
    session: Session,
    tenant: Tenant,
    *,
    deployment_pk: int,
    context_id: str | None,
    design_id: str,
    pinned_version: int | None,
    created_by: str,
    now: datetime,
) -> DeepLinkOffer:
    row = DesignDeepLink(
        registration_id=tenant.registration_id,
        deployment_id=deployment_pk,
        context_id=context_id,
        design_id=design_id,
        pinned_version=pinned_version,
        created_by=created_by,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _offer_info(row)


def take_deep_link_offer(
    session: Session,
    tenant: Tenant,
    *,
    deployment_pk: int,
    context_id: str | None,
    design_id: str,
    pinned_version: int | None,
    created_after: datetime,
    now: datetime,
) -> DeepLinkOffer | None:
    """Mark the oldest unused matching offer as used and return it (None when there is none).

    The conditional update (``used_at IS NULL``) makes two launches racing for one offer safe:
    only the one whose update changed a row gets it.
    """
    context_match = (
        DesignDeepLink.context_id.is_(None)
        if context_id is None
        else DesignDeepLink.context_id == context_id
    )
    version_match = (
        DesignDeepLink.pinned_version.is_(None)
        if pinned_version is None
        else DesignDeepLink.pinned_version == pinned_version
    )
    candidates = session.scalars(
        select(DesignDeepLink)
        .where(
            DesignDeepLink.registration_id == tenant.registration_id,
            DesignDeepLink.deployment_id == deployment_pk,
            DesignDeepLink.design_id == design_id,
            DesignDeepLink.used_at.is_(None),
            DesignDeepLink.created_at >= created_after,
            context_match,
            version_match,
        )
        .order_by(DesignDeepLink.created_at, DesignDeepLink.id)
    ).all()
    for row in candidates:
        result = session.execute(
            update(DesignDeepLink)
            .where(DesignDeepLink.id == row.id, DesignDeepLink.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            return _offer_info(row)
    return None
