"""What launches record: users, contexts, resource links, memberships and the launch itself, each
one ``INSERT ... ON CONFLICT`` statement (SQLite 3.35+ and PostgreSQL) whichever process saw the
user or course first; and what is read back from them (a launch's context, a course page).
Functions flush when they need generated ids but never commit: the caller's transaction does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from adaptive_lti.core.grading import SCOPE_SCORE
from adaptive_lti.core.lti import (
    RESOURCE_LINK_REQUEST,
    CourseContext,
    CoursePage,
    LaunchContext,
    LaunchSummary,
    Person,
    RecordedLaunch,
    ResourceLinkInfo,
    normalise_role,
)
from adaptive_lti.db.base import as_utc, core_table, upsert
from adaptive_lti.db.tables import (
    Context,
    Deployment,
    Launch,
    PlatformRegistration,
    ResourceLink,
    User,
)


def resource_link_title(session: Session, resource_link_pk: int) -> str | None:
    """The activity's title as its latest launch gave it (``resource_link.title``)."""
    title = session.scalar(select(ResourceLink.title).where(ResourceLink.id == resource_link_pk))
    return title.strip() if isinstance(title, str) and title.strip() else None


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
    core = core_table(table)
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
    return upsert(session, table, values, conflict=conflict, update_columns=update_columns)


def _optional_json(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if mapping is None else json.loads(json.dumps(dict(mapping), default=str))


_LAUNCH_INSERT = insert(core_table(Launch))


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
        user_pk = upsert(
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
    launch_table = core_table(Launch)
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
