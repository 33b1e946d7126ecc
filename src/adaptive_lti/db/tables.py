"""Every table of the tool. Changes go through an Alembic revision in ``migrations/versions``.

Sections, one per capability: LTI core (platforms, keys, launches), learner journey (designs,
events, snapshots), grade delivery (line items, outbox).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from adaptive_lti.db.base import Base

__all__ = [
    "AuditRecord",
    "Base",
    "Context",
    "Deployment",
    "Design",
    "DesignBinding",
    "DesignDeepLink",
    "DesignOwner",
    "DesignVersion",
    "Launch",
    "LearnerEnrolment",
    "LearnerEvent",
    "LearnerSnapshot",
    "LineItem",
    "LoginState",
    "PlatformRegistration",
    "RefusalCount",
    "ResourceLink",
    "RosterMember",
    "ScoreOutbox",
    "ServiceAccessToken",
    "ToolKey",
    "ToolSecret",
    "User",
]

# ---------------------------------------------------------------------------------------------
# LTI core: platform registrations, deployments, the tool's keys, OIDC login state, and what
# launches tell us (users, contexts, resource links, launches). Times are stored in UTC.
# ---------------------------------------------------------------------------------------------

# The column types the declarations below share (SQLAlchemy 2's Annotated mapping; datetimes and
# JSON values are mapped in ``Base.type_annotation_map``).
IntPK = Annotated[int, mapped_column(Integer, primary_key=True)]
OptionalText = Annotated[str | None, mapped_column(Text)]


def _cascading_fk(target: str, **column: Any) -> MappedColumn[Any]:
    """An indexed foreign key to ``target`` ("table.id"): the row goes when the row it points
    to goes (``ON DELETE CASCADE``). ``column`` is passed on (``nullable=True``)."""
    return mapped_column(ForeignKey(target, ondelete="CASCADE"), index=True, **column)


class SeenBetween:
    """When a launch first and last named this user, course or activity."""

    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class PlatformRegistration(Base):
    """One platform registration: an (issuer, client_id) pair and the platform's endpoints."""

    __tablename__ = "lti_registration"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[IntPK]
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(Text)
    auth_token_url: Mapped[str] = mapped_column(Text)
    # OAuth 2 token audience when it differs from the token URL (LTI Advantage, Security §4.1).
    auth_token_audience: Mapped[OptionalText]
    # Either a JWKS URL or a static key set (JSON text) verifies the platform's id_tokens.
    jwks_url: Mapped[OptionalText]
    static_jwks: Mapped[OptionalText]
    # "active", or "awaiting-approval" for a dynamic registration an admin has not approved.
    status: Mapped[str] = mapped_column(String(32), default="active")
    # JWKS cache: the last key set fetched, when, until when HTTP caching allows it, and the
    # last forced refetch (an unknown kid), which is rate limited.
    jwks_cache: Mapped[OptionalText]
    jwks_fetched_at: Mapped[datetime | None]
    jwks_expires_at: Mapped[datetime | None]
    jwks_forced_refetch_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Deployment(Base):
    """A deployment of the tool on a platform (LTI Core 1.3 §3.1.3), keyed per registration."""

    __tablename__ = "lti_deployment"
    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    deployment_id: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # When an administrator deactivated it (null: active, or recorded and never activated).
    deactivated_at: Mapped[datetime | None]


class ToolKey(Base):
    """One of the tool's RSA signing keys. The private key is never logged or shown."""

    __tablename__ = "lti_tool_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The PEM in the database, or the path of a 0600 file when Settings.key_dir is set.
    private_key_pem: Mapped[OptionalText]
    private_key_path: Mapped[OptionalText]
    public_jwk: Mapped[dict[str, Any]]
    # "active" keys are published; the newest active key signs. "retired" keys are neither.
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class ToolSecret(Base):
    """The secret that signs the tool's sessions when none is configured: one row, made by the
    first process to start, read by every other (never logged or shown)."""

    __tablename__ = "lti_tool_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class LoginState(Base):
    """An OIDC login in flight: single use (deleted by the launch) and short lived."""

    __tablename__ = "lti_login_state"

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    target_link_uri: Mapped[str] = mapped_column(Text)
    login_hint: Mapped[str] = mapped_column(Text)
    lti_message_hint: Mapped[OptionalText]
    deployment_hint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The platform's postMessage storage frame when it sent lti_storage_target.
    storage_target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class User(SeenBetween, Base):
    """A person as a platform knows them: ``sub`` is unique per issuer (LTI Core 1.3 §5.3.6)."""

    __tablename__ = "lti_user"
    __table_args__ = (UniqueConstraint("registration_id", "subject"),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    subject: Mapped[str] = mapped_column(String(255))
    given_name: Mapped[OptionalText]
    family_name: Mapped[OptionalText]
    name: Mapped[OptionalText]
    email: Mapped[OptionalText]
    person_sourcedid: Mapped[OptionalText]
    # Moodle's ext.user_username.
    username: Mapped[OptionalText]


class Context(SeenBetween, Base):
    """A course (LTI Core 1.3 §5.4.1): its id is unique within a deployment."""

    __tablename__ = "lti_context"
    __table_args__ = (UniqueConstraint("deployment_id", "context_id"),)

    id: Mapped[IntPK]
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[OptionalText]
    title: Mapped[OptionalText]
    types: Mapped[list[str]]


class ResourceLink(SeenBetween, Base):
    """An activity placed in a course (LTI Core 1.3 §5.3.5), unique within a deployment."""

    __tablename__ = "lti_resource_link"
    __table_args__ = (UniqueConstraint("deployment_id", "resource_link_id"),)

    id: Mapped[IntPK]
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    context_id: Mapped[int | None] = _cascading_fk("lti_context.id", nullable=True)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[OptionalText]
    description: Mapped[OptionalText]


class Launch(Base):
    """One accepted launch and the claims the tool keeps from it."""

    __tablename__ = "lti_launch"

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    user_id: Mapped[int | None] = _cascading_fk("lti_user.id", nullable=True)
    context_id: Mapped[int | None] = _cascading_fk("lti_context.id", nullable=True)
    resource_link_id: Mapped[int | None] = _cascading_fk("lti_resource_link.id", nullable=True)
    message_type: Mapped[str] = mapped_column(String(64))
    target_link_uri: Mapped[str] = mapped_column(Text)
    # Roles as sent (normalised to full URIs, unknown ones kept) and their short forms.
    roles: Mapped[list[str]]
    roles_short: Mapped[list[str]]
    custom: Mapped[dict[str, Any]]
    locale: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Service and vendor claims, kept as sent (null when absent).
    ags_endpoint: Mapped[dict[str, Any] | None]
    nrps: Mapped[dict[str, Any] | None]
    deep_linking_settings: Mapped[dict[str, Any] | None]
    basic_outcome: Mapped[dict[str, Any] | None]
    ext: Mapped[dict[str, Any] | None]
    tool_platform: Mapped[dict[str, Any] | None]
    launch_presentation: Mapped[dict[str, Any] | None]
    launched_at: Mapped[datetime] = mapped_column(index=True)


# ---------------------------------------------------------------------------------------------
# Grade delivery and roster: the platform line items scores go to, the score outbox the worker
# delivers from (written in the transaction that produced the score), service access tokens
# cached per registration and scope set, and course members synced through NRPS.
# ---------------------------------------------------------------------------------------------


class LineItem(Base):
    """A gradebook column on the platform (AGS 2.0 §3.2) that the tool posts scores to.

    ``binding_key`` says what the column belongs to: the launch's own ``lineitem`` URL, or a
    (container, resource link, resource id) triple the worker finds or creates on the platform
    before the first score. ``lineitem_url`` stays empty until then.
    """

    __tablename__ = "lti_line_item"
    __table_args__ = (UniqueConstraint("registration_id", "binding_key"),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    resource_link_id: Mapped[int | None] = _cascading_fk("lti_resource_link.id", nullable=True)
    binding_key: Mapped[str] = mapped_column(String(64))
    # The line-items container (the AGS claim's ``lineitems``) and the line item itself.
    lineitems_url: Mapped[OptionalText]
    lineitem_url: Mapped[OptionalText]
    label: Mapped[str] = mapped_column(Text)
    score_maximum: Mapped[float] = mapped_column(Float)
    # The tool's own identifiers of the column (AGS ``resourceId`` and ``tag``).
    resource_id: Mapped[str] = mapped_column(String(255), default="")
    tag: Mapped[str] = mapped_column(String(255), default="")
    # The platform's resource link id (AGS ``resourceLinkId``) a created column is attached to.
    platform_resource_link_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The AGS scopes the launch granted (AGS 2.0 §3.1): service tokens ask for no others.
    granted_scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScoreOutbox(Base):
    """One score waiting for, or done with, delivery to the platform (AGS 2.0 §3.4).

    Written in the transaction that produced the score; the worker claims due rows
    (``claim_token`` until ``claim_expires_at``), posts them and records the outcome.
    ``dedupe_key`` is unique, so queueing the same score twice stores it once.
    """

    __tablename__ = "lti_score_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_lti_score_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    line_item_id: Mapped[int] = _cascading_fk("lti_line_item.id")
    # The platform's user id (the launch's ``sub``), the score's ``userId``.
    user_sub: Mapped[str] = mapped_column(String(255))
    # scoreGiven, scoreMaximum, activityProgress, gradingProgress, timestamp, comment.
    payload: Mapped[dict[str, Any]]
    # "pending", "delivered" or "failed" (permanently: the platform refused it, or too many tries).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # Why the last attempt failed, in words an instructor can act on.
    last_error: Mapped[OptionalText]
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_expires_at: Mapped[datetime | None]
    dedupe_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class ServiceAccessToken(Base):
    """An OAuth 2 access token for the platform's services (1EdTech Security Framework §4.1)."""

    __tablename__ = "lti_service_token"
    __table_args__ = (UniqueConstraint("registration_id", "scopes"),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    # The scopes asked for, sorted and space separated: one cached token per scope set.
    scopes: Mapped[str] = mapped_column(String(1024))
    access_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]


class RosterMember(Base):
    """A member of a course as the platform's NRPS lists it (NRPS 2.0 §2.2), launched or not."""

    __tablename__ = "lti_roster_member"
    __table_args__ = (UniqueConstraint("context_id", "user_sub"),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    context_id: Mapped[int] = _cascading_fk("lti_context.id")
    # The member's ``user_id``: the same value as the ``sub`` of their launches.
    user_sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[OptionalText]
    given_name: Mapped[OptionalText]
    family_name: Mapped[OptionalText]
    email: Mapped[OptionalText]
    # Moodle's ext_user_username.
    username: Mapped[OptionalText]
    lis_person_sourcedid: Mapped[OptionalText]
    # Roles as full URIs, and their short forms ("Learner", "Instructor").
    roles: Mapped[list[str]]
    roles_short: Mapped[list[str]]
    # "active", "inactive" (the platform says so, or the member left the list) or "deleted".
    status: Mapped[str] = mapped_column(String(16))
    first_synced_at: Mapped[datetime]
    synced_at: Mapped[datetime]


# ---------------------------------------------------------------------------------------------
# Designs: the catalogue of published designs (each version immutable once published), the
# activities (resource links) bound to them, and the designs instructors returned by deep linking
# whose activity has not been launched yet.
# ---------------------------------------------------------------------------------------------


def _design_fk() -> ForeignKeyConstraint:
    """The composite foreign key of a row that belongs to one tenant's design: (registration,
    design id). The row goes when the design goes."""
    return ForeignKeyConstraint(
        ["registration_id", "design_id"],
        ["design.registration_id", "design.design_id"],
        ondelete="CASCADE",
    )


class Design(Base):
    """A design in one tenant's catalogue (a tenant is a platform registration), by the id its
    file declares (``design: intro-programming``). Two tenants may each have a design of the
    same id: they are different designs that share nothing."""

    __tablename__ = "design"

    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registration.id", ondelete="CASCADE"), primary_key=True
    )
    design_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The title of the latest published version.
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DesignOwner(Base):
    """A platform user (``sub`` of the tenant's launches) who may publish new versions of a
    design: whoever published its first version through the tool, and whom they add. The
    tenant's administrators may always publish and are not listed."""

    __tablename__ = "design_owner"
    __table_args__ = (_design_fk(),)

    registration_id: Mapped[IntPK]
    design_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Who they are, as the launch that made them owner named them.
    name: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime]


class DesignVersion(Base):
    """One published version of a design. Never updated: learners stay on the version they began."""

    __tablename__ = "design_version"
    __table_args__ = (UniqueConstraint("registration_id", "design_id", "version"), _design_fk())

    id: Mapped[IntPK]
    registration_id: Mapped[int] = mapped_column(Integer)
    design_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    # The YAML file as published, and its SHA-256 (line endings normalised).
    source: Mapped[str] = mapped_column(Text)
    # Markdown of pages written as ``file:`` beside the design, by activity id, so a published
    # version is self-contained. Part of the content hash.
    page_bodies: Mapped[dict[str, str]]
    content_hash: Mapped[str] = mapped_column(String(64))
    # {"errors": 0, "warnings": n, "messages": [...]}: what the linter said at publication.
    lint_summary: Mapped[dict[str, Any]]
    # Whether the design sends a grade (deep linking then asks the platform for a line item).
    sends_grade: Mapped[bool] = mapped_column(Boolean)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(255))


class DesignBinding(Base):
    """An activity (resource link, unique within a deployment) bound to a design."""

    __tablename__ = "design_binding"
    __table_args__ = (UniqueConstraint("deployment_id", "resource_link_id"), _design_fk())

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    # The platform's resource link id and context id, as sent in the launch.
    resource_link_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The tenant's design (the composite key with registration_id).
    design_id: Mapped[str] = mapped_column(String(64), index=True)
    # A pinned version, or null to follow the latest published version.
    pinned_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bound_by: Mapped[str] = mapped_column(Text)
    # "deep-link", "custom-param" or "instructor" (core.catalogue.BindingMethod).
    method: Mapped[str] = mapped_column(String(32))
    bound_at: Mapped[datetime]


class DesignDeepLink(Base):
    """A design returned to the platform by deep linking, waiting for its activity's first launch."""

    __tablename__ = "design_deep_link"
    __table_args__ = (_design_fk(),)

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    context_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The tenant's design (the composite key with registration_id).
    design_id: Mapped[str] = mapped_column(String(64), index=True)
    pinned_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # Set when the first launch of the activity it created bound it.
    used_at: Mapped[datetime | None]


# ---------------------------------------------------------------------------------------------
# Learner journey: one enrolment per learner on an activity's design, the append-only log of what
# they did (the truth), and a snapshot derived from it for speed (rebuilt from the log at will).
# Two requests of one learner cannot both append: (enrolment, sequence) is unique, and the
# snapshot's ``event_count`` is the sequence the next event must take.
# ---------------------------------------------------------------------------------------------


class LearnerEnrolment(Base):
    """A learner following a design on one activity (resource link), on one design version."""

    __tablename__ = "learner_enrolment"
    __table_args__ = (UniqueConstraint("resource_link_id", "user_id", "design_id"), _design_fk())

    id: Mapped[IntPK]
    registration_id: Mapped[int] = _cascading_fk("lti_registration.id")
    deployment_id: Mapped[int] = _cascading_fk("lti_deployment.id")
    context_id: Mapped[int | None] = _cascading_fk("lti_context.id", nullable=True)
    resource_link_id: Mapped[int] = _cascading_fk("lti_resource_link.id")
    user_id: Mapped[int] = _cascading_fk("lti_user.id")
    # The learner's ``sub``: the AGS score's userId.
    user_sub: Mapped[str] = mapped_column(String(255))
    binding_id: Mapped[int | None] = mapped_column(
        ForeignKey("design_binding.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # The tenant's design (the composite key with registration_id).
    design_id: Mapped[str] = mapped_column(String(64), index=True)
    # The version the learner is on: the one they started, until a migration moves them.
    design_version: Mapped[int] = mapped_column(Integer)
    # The AGS claim of the learner's latest launch (where scores go), null when grading is off.
    ags_endpoint: Mapped[dict[str, Any] | None]
    locale: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime]
    last_launch_at: Mapped[datetime]


class LearnerEvent(Base):
    """One event of a learner's log (``core.events``), never updated nor deleted."""

    __tablename__ = "learner_event"
    __table_args__ = (UniqueConstraint("enrolment_id", "sequence"),)

    id: Mapped[IntPK]
    enrolment_id: Mapped[int] = _cascading_fk("learner_enrolment.id")
    # 0, 1, 2, ... per enrolment, without gaps.
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(32))
    # ``core.events.event_to_dict`` of the event (its own ``at`` included).
    payload: Mapped[dict[str, Any]]
    # The design version the event was decided on.
    design_version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    # Who made it happen when it was not the learner (an instructor's override or reset).
    actor: Mapped[OptionalText]
    # Free text that came with the event and is not part of the engine's event: a reflection's
    # answer (the event says only that the reflection was completed).
    note: Mapped[OptionalText]
    # The decision that followed, in the words of the rule that fired (for traces and analytics).
    decision_kind: Mapped[str] = mapped_column(String(16))
    decision_rule: Mapped[str] = mapped_column(Text)


class LearnerSnapshot(Base):
    """Where a learner is now, derived from the log (``rebuild_snapshot`` makes it again)."""

    __tablename__ = "learner_snapshot"

    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("learner_enrolment.id", ondelete="CASCADE"), primary_key=True
    )
    # ``core.learner.LearnerState.to_dict`` and the engine's current decision (explanation too).
    state: Mapped[dict[str, Any]]
    decision: Mapped[dict[str, Any]]
    # "activity", "choose", "input" or "completed".
    decision_kind: Mapped[str] = mapped_column(String(16))
    activity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The branch cases the learner is on, outermost first, joined with " / ".
    route: Mapped[OptionalText]
    flags: Mapped[list[str]]
    needs_help: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    grade: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # How many events the log holds: the next event's sequence number.
    event_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(index=True)


# ---------------------------------------------------------------------------------------------
# Operations: what an administrator's 'adaptive-lti status' reads besides the tables above.
# ---------------------------------------------------------------------------------------------


class RefusalCount(Base):
    """Refused logins and launches, counted per hour, step and check (``metrics.refusal_code``).

    One row per (hour, step, check) whatever the traffic, and rows older than a week are
    pruned as new refusals arrive: a flood of forged launches cannot grow the table."""

    __tablename__ = "lti_refusal_count"
    __table_args__ = (UniqueConstraint("hour", "step", "check"),)

    id: Mapped[IntPK]
    # The start of the hour (UTC) the refusals fell in.
    hour: Mapped[datetime]
    # "login", "launch" or "other".
    step: Mapped[str] = mapped_column(String(16))
    check: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    # The last refusal's message (shortened), so the administrator sees what was wrong.
    last_message: Mapped[str] = mapped_column(Text, default="")
    last_at: Mapped[datetime]


# ---------------------------------------------------------------------------------------------
# Audit: every administrative and instructor action, appended in the transaction of the action
# (a failed action leaves no record) and never updated. ``registration_id`` names the tenant but
# is not a foreign key: the record of removing a registration outlives the registration.
# ---------------------------------------------------------------------------------------------


class AuditRecord(Base):
    """Who did what, when, to what, on which platform registration (``db.audit_repo``)."""

    __tablename__ = "audit_record"
    __table_args__ = (
        Index("ix_audit_record_registration_id_occurred_at", "registration_id", "occurred_at"),
    )

    id: Mapped[IntPK]
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    # The platform user's ``sub`` when a platform user acted (null for the command line).
    actor_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The platform user's name, or "cli:<os user>" for the command line.
    actor_name: Mapped[str] = mapped_column(Text)
    # Null for tool-wide actions (key rotation, publishing to the shared catalogue).
    registration_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "design.publish", "learner.move", ... (``db.audit_repo.AuditAction``).
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
