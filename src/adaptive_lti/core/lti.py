"""What the tool knows about platforms and launches, as immutable values (no I/O, no JOSE).

``lti/claims.py`` builds a ``LaunchContext`` from an id_token whose signature and claims have been
checked; the repositories (``db/registrations_repo.py``, ``db/launches_repo.py``, ...) turn rows
into the values below. Role and context-type vocabularies follow LTI Core 1.3 Appendix A (https://www.imsglobal.org/spec/lti/v1p3/#role-vocabularies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

# LTI Core 1.3 §5.1 message types this tool accepts.
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUPPORTED_MESSAGE_TYPES = frozenset({RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST})

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
MEMBERSHIP_SUB_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
LTI_SYSTEM = "http://purl.imsglobal.org/vocab/lti/system/person#"
COURSE_TYPE = "http://purl.imsglobal.org/vocab/lis/v2/course#"

# Appendix A.2.3: the context roles. Their simple names ("Instructor") are deprecated but
# allowed (§A.2.3.1), and Moodle and NRPS send them; the LTI 1.1 URNs still appear in migrations.
CONTEXT_ROLES = frozenset(
    {
        "Administrator",
        "ContentDeveloper",
        "Instructor",
        "Learner",
        "Mentor",
        "Manager",
        "Member",
        "Officer",
    }
)
INSTITUTION_ROLES = frozenset(
    {
        "Administrator",
        "Faculty",
        "Guest",
        "None",
        "Other",
        "Staff",
        "Student",
        "Alumni",
        "Instructor",
        "Learner",
        "Member",
        "Mentor",
        "Observer",
        "ProspectiveStudent",
    }
)
SYSTEM_ROLES = frozenset(
    {"Administrator", "None", "AccountAdmin", "Creator", "SysAdmin", "SysSupport", "User"}
)
LEGACY_CONTEXT_ROLE_PREFIX = "urn:lti:role:ims/lis/"
LEGACY_INSTITUTION_ROLE_PREFIX = "urn:lti:instrole:ims/lis/"
LEGACY_SYSTEM_ROLE_PREFIX = "urn:lti:sysrole:ims/lis/"
# §5.4.1 context types; simple names ("CourseSection", as Moodle sends) are deprecated but seen.
CONTEXT_TYPES = frozenset({"CourseTemplate", "CourseOffering", "CourseSection", "Group"})

# Who may see the instructor's pages: context roles that teach or manage the course, and the
# institution's or system's administrators.
TEACHING_CONTEXT_ROLES = frozenset({"Instructor", "Administrator", "ContentDeveloper", "Manager"})


class RoleScope(StrEnum):
    context = "context"
    institution = "institution"
    system = "system"
    unknown = "unknown"


@dataclass(frozen=True)
class Role:
    """One role as sent, normalised: ``uri`` is the full vocabulary URI (or the raw value when
    the role is not in any vocabulary), ``short`` its simple name, ``principal`` the context role
    a sub-role belongs to (``Instructor`` for ``membership/Instructor#TeachingAssistant``)."""

    uri: str
    short: str
    scope: RoleScope
    principal: str

    @property
    def known(self) -> bool:
        return self.scope is not RoleScope.unknown


def normalise_role(raw: str) -> Role:
    """Map a role from the roles claim (§5.3.7) to its full URI and short name; keep unknowns."""
    value = raw.strip()
    if value.startswith(MEMBERSHIP):
        name = value[len(MEMBERSHIP) :]
        if name in CONTEXT_ROLES:
            return Role(value, name, RoleScope.context, name)
    elif value.startswith(MEMBERSHIP_SUB_ROLE):
        # Sub-roles (§A.2.3.1): membership/<Principal>#<SubRole>.
        principal, _, sub_role = value[len(MEMBERSHIP_SUB_ROLE) :].partition("#")
        if principal in CONTEXT_ROLES and sub_role:
            return Role(value, sub_role, RoleScope.context, principal)
    elif value.startswith(INSTITUTION):
        name = value[len(INSTITUTION) :]
        if name in INSTITUTION_ROLES:
            return Role(value, name, RoleScope.institution, name)
    elif value.startswith(SYSTEM):
        name = value[len(SYSTEM) :]
        if name in SYSTEM_ROLES:
            return Role(value, name, RoleScope.system, name)
    elif value.startswith(LTI_SYSTEM):
        name = value[len(LTI_SYSTEM) :]
        return Role(value, name, RoleScope.system, name)
    elif value in CONTEXT_ROLES:
        return Role(MEMBERSHIP + value, value, RoleScope.context, value)
    elif value.startswith(LEGACY_CONTEXT_ROLE_PREFIX):
        name, _, sub_role = value[len(LEGACY_CONTEXT_ROLE_PREFIX) :].partition("/")
        if name in CONTEXT_ROLES:
            if sub_role:
                return Role(
                    f"{MEMBERSHIP_SUB_ROLE}{name}#{sub_role}", sub_role, RoleScope.context, name
                )
            return Role(MEMBERSHIP + name, name, RoleScope.context, name)
    elif value.startswith(LEGACY_INSTITUTION_ROLE_PREFIX):
        name = value[len(LEGACY_INSTITUTION_ROLE_PREFIX) :]
        if name in INSTITUTION_ROLES:
            return Role(INSTITUTION + name, name, RoleScope.institution, name)
    elif value.startswith(LEGACY_SYSTEM_ROLE_PREFIX):
        name = value[len(LEGACY_SYSTEM_ROLE_PREFIX) :]
        if name in SYSTEM_ROLES:
            return Role(SYSTEM + name, name, RoleScope.system, name)
    return Role(value, value, RoleScope.unknown, value)


def normalise_context_type(raw: str) -> str:
    """§5.4.1: a context type URI; Moodle's simple ``CourseSection`` becomes the full URI."""
    value = raw.strip()
    if value in CONTEXT_TYPES:
        return COURSE_TYPE + value
    return value


def is_teaching(roles: tuple[Role, ...]) -> bool:
    """True when the person teaches or manages the course (instructor pages are theirs)."""
    for role in roles:
        if role.scope is RoleScope.context and role.principal in TEACHING_CONTEXT_ROLES:
            return True
        if role.scope in (RoleScope.institution, RoleScope.system) and role.principal in {
            "Administrator",
            "SysAdmin",
        }:
            return True
    return False


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class CourseContext:
    """The context claim (§5.4.1): usually a course."""

    id: str
    label: str | None = None
    title: str | None = None
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceLinkInfo:
    """The resource link claim (§5.3.5): the activity placed in the course."""

    id: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Person:
    """The user claims (§5.3.6, OIDC standard claims); every field but ``subject`` is optional."""

    subject: str | None
    given_name: str | None = None
    family_name: str | None = None
    name: str | None = None
    email: str | None = None
    person_sourcedid: str | None = None
    # Moodle's ext.user_username.
    username: str | None = None

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        parts = [part for part in (self.given_name, self.family_name) if part]
        if parts:
            return " ".join(parts)
        if self.email:
            return self.email
        return "Anonymous user" if self.subject is None else f"User {self.subject}"


@dataclass(frozen=True)
class LaunchContext:
    """A verified launch, typed. Mapping fields are read-only views."""

    issuer: str
    client_id: str
    deployment_id: str
    message_type: str
    target_link_uri: str
    person: Person
    roles: tuple[Role, ...]
    context: CourseContext | None = None
    resource_link: ResourceLinkInfo | None = None
    custom: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    locale: str | None = None
    lis: Mapping[str, Any] | None = None
    ags_endpoint: Mapping[str, Any] | None = None
    nrps: Mapping[str, Any] | None = None
    deep_linking_settings: Mapping[str, Any] | None = None
    basic_outcome: Mapping[str, Any] | None = None
    ext: Mapping[str, Any] | None = None
    tool_platform: Mapping[str, Any] | None = None
    launch_presentation: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in (
            "lis",
            "ags_endpoint",
            "nrps",
            "deep_linking_settings",
            "basic_outcome",
            "ext",
            "tool_platform",
            "launch_presentation",
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "custom", MappingProxyType(dict(self.custom)))

    @property
    def role_uris(self) -> tuple[str, ...]:
        return tuple(role.uri for role in self.roles)

    @property
    def role_short_names(self) -> tuple[str, ...]:
        return tuple(role.short for role in self.roles)

    @property
    def is_instructor(self) -> bool:
        return is_teaching(self.roles)

    @property
    def is_deep_linking(self) -> bool:
        return self.message_type == DEEP_LINKING_REQUEST


class RegistrationStatus(StrEnum):
    active = "active"
    # A dynamic registration waiting for an administrator's approval.
    awaiting_approval = "awaiting-approval"


@dataclass(frozen=True)
class PlatformRegistrationInfo:
    """One registration of the tool with a platform, keyed by (issuer, client_id)."""

    id: int
    issuer: str
    client_id: str
    name: str
    auth_login_url: str
    auth_token_url: str
    auth_token_audience: str | None
    jwks_url: str | None
    static_jwks: Mapping[str, Any] | None
    status: RegistrationStatus
    created_at: datetime


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    registration_id: int
    deployment_id: str
    active: bool
    created_at: datetime
    # Set when an administrator deactivated it; an inactive deployment without it was recorded
    # by a launch and is waiting to be activated.
    deactivated_at: datetime | None = None


@dataclass(frozen=True)
class CachedKeySet:
    """A platform's JWKS as last fetched, and the HTTP-cache expiry."""

    keys: Mapping[str, Any] | None
    fetched_at: datetime | None
    expires_at: datetime | None
    forced_refetch_at: datetime | None


@dataclass(frozen=True)
class LoginStateInfo:
    """An OIDC login in flight (Security Framework §5.1.1.1), keyed by its state."""

    state: str
    nonce: str
    registration_id: int
    target_link_uri: str
    login_hint: str
    lti_message_hint: str | None
    deployment_hint: str | None
    storage_target: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ToolKeyInfo:
    """One of the tool's signing keys. ``private_key_pem`` never appears in a repr."""

    kid: str
    public_jwk: Mapping[str, Any]
    active: bool
    created_at: datetime
    retired_at: datetime | None
    private_key_pem: str = field(repr=False, default="")


@dataclass(frozen=True)
class RecordedLaunch:
    """What recording a launch produced: the ids the tool session is bound to."""

    launch_id: int
    registration_id: int
    deployment_pk: int
    user_pk: int | None
    context_pk: int | None
    resource_link_pk: int | None


@dataclass(frozen=True)
class LaunchSummary:
    """One recent launch, for the instructor's course page."""

    launch_id: int
    launched_at: datetime
    user_display_name: str
    roles_short: tuple[str, ...]
    message_type: str
    resource_link_title: str | None


@dataclass(frozen=True)
class CoursePage:
    """What the instructor's course page shows."""

    context: CourseContext | None
    resource_link: ResourceLinkInfo | None
    recent_launches: tuple[LaunchSummary, ...]
    launch_count: int
    # Distinct people who launched from this course.
    person_count: int
    # Whose launches these are: the activity's when there is one ("activity"), else the course's.
    scope: str = "course"
    # What the activity's latest launch says of grades (AGS 2.0 §3.1): "activity-column" (its
    # own line item), "tool-column" (no line item: the platform keeps no column for the activity
    # and the tool makes its own), "declined" (no grade service at all), "unknown" (no launch).
    grades: str = "unknown"
