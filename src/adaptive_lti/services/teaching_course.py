"""The instructor's view of an activity: the ``InstructorPlace`` an instructor's tool session is
bound to, the activity's page (the bound design, and every member with where they are) and the
roster sync from the platform's membership service.

Every function takes an ``InstructorPlace``: the ids an instructor's tool session is bound to
(the web layer builds it from the verified session, never from what a form says), so an
instructor sees and acts on the learners of their own activity only. Designs are uploaded and
chosen on the design pages (``services/design_publishing.py``, ``design_bindings.py``); route
counts are ``analytics/queries.py``. Functions flush, never commit (the request's transaction
commits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import BindingMethod, LintSummary, ResourceLinkBindingInfo, Tenant
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.errors import (
    AdaptiveLtiError,
    InvalidInputError,
    NotFoundError,
    PlatformServiceError,
)
from adaptive_lti.core.lti import CoursePage
from adaptive_lti.core.roster import Member, RosterSyncCounts
from adaptive_lti.db import audit_repo, designs_repo, teaching_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.db.teaching_repo import ActivityPlace, LatestScore, PersonRecord
from adaptive_lti.services import design_publishing
from adaptive_lti.services import launch as launch_service
from adaptive_lti.services import roster as roster_service

# Short role names of people who teach rather than learn (listed apart from the learners).
STAFF_ROLES = frozenset(
    {"Instructor", "TeachingAssistant", "Administrator", "ContentDeveloper", "Manager", "Mentor"}
)


# Why the engine sent the learner to their activity, when it is not simply the next step.
OFFER_REASONS = {
    "remediation": "remedial lesson",
    "support": "support material",
    "review": "spaced review",
    "override": "sent by an instructor",
    "retry": "retry",
    "recheck": "second try after remediation",
}


# How long a teacher's "why" may be (kept with the event, shown in the learner's trace).
MAX_REASON_LENGTH = 500


class _LaunchIds(Protocol):
    """The ids a recorded launch (and the tool session bound to it) carries."""

    @property
    def launch_id(self) -> int: ...
    @property
    def registration_id(self) -> int: ...
    @property
    def deployment_pk(self) -> int: ...
    @property
    def context_pk(self) -> int | None: ...
    @property
    def resource_link_pk(self) -> int | None: ...
    @property
    def user_pk(self) -> int | None: ...


@dataclass(frozen=True)
class InstructorPlace:
    """Where an instructor's verified tool session says they are, and who they are."""

    launch_id: int
    registration_id: int
    deployment_pk: int
    context_pk: int | None
    resource_link_pk: int | None
    user_pk: int | None

    @classmethod
    def of(cls, launch: _LaunchIds) -> InstructorPlace:
        """The place of a recorded launch or of the tool session bound to it."""
        return cls(
            launch_id=launch.launch_id,
            registration_id=launch.registration_id,
            deployment_pk=launch.deployment_pk,
            context_pk=launch.context_pk,
            resource_link_pk=launch.resource_link_pk,
            user_pk=launch.user_pk,
        )


@dataclass(frozen=True)
class BoundDesign:
    """The design the activity runs, as the instructor's page shows it."""

    design_id: str
    version: int
    title: str
    pinned: bool
    method: BindingMethod
    bound_by: str
    bound_at: datetime
    lint: LintSummary
    sends_grade: bool


@dataclass(frozen=True)
class MemberPlace:
    """One person of the activity and where they are now."""

    user_sub: str
    name: str
    email: str | None
    roles: tuple[str, ...]
    in_roster: bool
    roster_status: str | None
    launched: bool
    enrolment_id: int | None
    place: str  # in words: "Loops check (attempt 2)", "Never launched", ...
    place_kind: str  # "activity", "choose", "input", "completed", "launched", "not-launched"
    activity_id: str | None
    route: str | None
    progress: float | None  # 0..1
    flags: tuple[tuple[str, str], ...]  # (flag, why it was raised)
    needs_help: bool
    last_activity: datetime | None
    grade: float | None
    passed: bool | None
    score: LatestScore | None
    overridden: str | None  # the last teacher action, in words


@dataclass(frozen=True)
class CourseOverview:
    place: ActivityPlace
    design: BoundDesign | None
    design_problem: str | None  # why the bound design cannot be shown (e.g. unpublished)
    learners: tuple[MemberPlace, ...]
    staff: tuple[MemberPlace, ...]
    can_sync_roster: bool
    roster_size: int
    launches: CoursePage
    instructor: str  # who is looking, as their actions are recorded
    sync_report: RosterSyncCounts | None = None
    sync_error: AdaptiveLtiError | None = None

    @property
    def needs_help(self) -> tuple[MemberPlace, ...]:
        return tuple(member for member in self.learners if member.needs_help)

    @property
    def never_launched(self) -> int:
        return sum(1 for member in self.learners if not member.launched)


def _activity_place(session: Session, place: InstructorPlace) -> ActivityPlace:
    return teaching_repo.activity_place(session, place.context_pk, place.resource_link_pk)


def _binding(session: Session, place: InstructorPlace) -> ResourceLinkBindingInfo | None:
    activity = _activity_place(session, place)
    if activity.resource_link_id is None:
        return None
    return designs_repo.find_binding(
        session, Tenant(place.registration_id), place.deployment_pk, activity.resource_link_id
    )


def _bound_design(
    session: Session, binding: ResourceLinkBindingInfo
) -> tuple[BoundDesign | None, str | None]:
    try:
        version = design_publishing.resolve(
            session, Tenant(binding.registration_id), binding.reference
        )
    except NotFoundError as error:
        return None, str(error)
    return (
        BoundDesign(
            design_id=version.design_id,
            version=version.version,
            title=version.title,
            pinned=binding.pinned_version is not None,
            method=binding.method,
            bound_by=binding.bound_by,
            bound_at=binding.bound_at,
            lint=version.lint,
            sends_grade=version.sends_grade,
        ),
        None,
    )


class TenantDesigns:
    """Compiled design versions of one tenant, read once per request."""

    def __init__(self, session: Session, tenant: Tenant) -> None:
        self._session = session
        self._tenant = tenant
        self._compiled: dict[tuple[str, int], CompiledDesign | None] = {}

    def get(self, design_id: str, version: int) -> CompiledDesign | None:
        key = (design_id, version)
        if key not in self._compiled:
            found = designs_repo.find_version(self._session, self._tenant, design_id, version)
            self._compiled[key] = (
                None if found is None else design_publishing.compiled_design(found)
            )
        return self._compiled[key]


def activity_title(design: CompiledDesign | None, activity_id: str | None) -> str:
    if activity_id is None:
        return ""
    if design is not None and activity_id in design.design.activities:
        return design.design.activities[activity_id].title
    return activity_id


def _place_words(record: PersonRecord, design: CompiledDesign | None) -> tuple[str, str]:
    """What the learner is doing now, in words, and its kind."""
    snapshot = record.snapshot
    if snapshot is None:
        if record.enrolment_id is not None:
            return "Started, nothing recorded yet", "launched"
        if record.launch_count:
            return "Opened the activity; has not started the design", "launched"
        return "Never launched the activity", "not-launched"
    kind = str(snapshot["decision_kind"])
    decision = snapshot.get("decision") or {}
    if kind == "completed":
        passed = snapshot.get("passed")
        verdict = "passed" if passed is True else "not passed" if passed is False else ""
        return f"Finished{' — ' + verdict if verdict else ''}", kind
    if kind == "choose":
        prompt = decision.get("prompt") or decision.get("choice") or "a choice"
        return f"Choosing: {prompt}", kind
    if kind == "input":
        return f"Answering the questions of {decision.get('title') or 'the intake'}", kind
    title = decision.get("title") or activity_title(design, snapshot.get("activity"))
    attempt = decision.get("attempt")
    reason = decision.get("reason")
    extra = []
    if isinstance(attempt, int) and attempt > 1:
        extra.append(f"attempt {attempt}")
    if isinstance(reason, str) and reason in OFFER_REASONS:
        extra.append(OFFER_REASONS[reason])
    return f"{title}{' (' + ', '.join(extra) + ')' if extra else ''}", kind


def json_object(value: object) -> dict[str, Any]:
    """A JSON object from a snapshot, or an empty one when it is anything else."""
    return value if isinstance(value, dict) else {}


def member_place_of(record: PersonRecord, designs: TenantDesigns) -> MemberPlace:
    design = (
        designs.get(record.design_id, record.design_version)
        if record.design_id is not None and record.design_version is not None
        else None
    )
    place, kind = _place_words(record, design)
    snapshot = record.snapshot or {}
    state = snapshot.get("state") or {}
    reasons = json_object(state.get("flags"))
    flags = tuple((str(flag), str(reasons.get(flag, ""))) for flag in snapshot.get("flags") or ())
    override = json_object(state.get("override"))
    overridden = None
    if override:
        overridden = (
            f"{override.get('target', '')} by {override.get('by', 'an instructor')}"
            f"{': ' + override['reason'] if override.get('reason') else ''}"
        )
    moments = [m for m in (snapshot.get("updated_at"), record.last_launch_at) if m is not None]
    return MemberPlace(
        user_sub=record.user_sub,
        name=record.name or f"User {record.user_sub}",
        email=record.email,
        roles=record.roles_short,
        in_roster=record.roster_status is not None,
        roster_status=record.roster_status,
        launched=record.launch_count > 0 or record.enrolment_id is not None,
        enrolment_id=record.enrolment_id,
        place=place,
        place_kind=kind,
        activity_id=snapshot.get("activity"),
        route=snapshot.get("route"),
        progress=snapshot.get("progress"),
        flags=flags,
        needs_help=bool(snapshot.get("needs_help")),
        last_activity=max(moments) if moments else None,
        grade=snapshot.get("grade"),
        passed=snapshot.get("passed"),
        score=record.latest_score,
        overridden=overridden,
    )


def _is_staff(member: MemberPlace) -> bool:
    return member.enrolment_id is None and any(role in STAFF_ROLES for role in member.roles)


def course_overview(session: Session, place: InstructorPlace) -> CourseOverview:
    """The activity's page: its design, and every member with where they are."""
    activity = _activity_place(session, place)
    binding = _binding(session, place)
    design, problem = _bound_design(session, binding) if binding else (None, None)
    designs = TenantDesigns(session, Tenant(place.registration_id))
    records = teaching_repo.people_of_activity(
        session, Tenant(place.registration_id), place.context_pk, place.resource_link_pk
    )
    members = [member_place_of(record, designs) for record in records]
    members.sort(key=lambda m: (m.name.casefold(), m.user_sub))
    memberships_url = roster_url(session, place)
    return CourseOverview(
        place=activity,
        design=design,
        design_problem=problem,
        learners=tuple(m for m in members if not _is_staff(m)),
        staff=tuple(m for m in members if _is_staff(m)),
        can_sync_roster=memberships_url is not None,
        roster_size=sum(1 for r in records if r.roster_status is not None),
        instructor=instructor_name(session, place),
        launches=launch_service.course_page(
            session, context_pk=place.context_pk, resource_link_pk=place.resource_link_pk, limit=10
        ),
    )


def roster_url(session: Session, place: InstructorPlace) -> str | None:
    """The NRPS memberships URL of the instructor's course (from its launches), if any."""
    if place.context_pk is None:
        return None
    return teaching_repo.latest_launch_with_memberships(
        session, place.context_pk, place.registration_id
    )


@dataclass(frozen=True)
class FetchedRoster:
    """The platform's answer to a roster read, kept to be stored later: the members, or why
    they could not be read. A ``MembershipSource`` that answers from memory."""

    members: tuple[Member, ...] = ()
    failure: PlatformServiceError | None = None

    @classmethod
    def read(
        cls, source: roster_service.MembershipSource, registration_id: int, url: str | None
    ) -> FetchedRoster:
        if url is None:
            return cls()
        try:
            return cls(members=tuple(source.fetch_members(registration_id, url)))
        except PlatformServiceError as failure:
            return cls(failure=failure)

    def fetch_members(self, registration_id: int, memberships_url: str) -> list[Member]:
        if self.failure is not None:
            raise self.failure
        return list(self.members)


def sync_course_roster(
    session: Session,
    place: InstructorPlace,
    source: roster_service.MembershipSource,
    *,
    now: datetime,
) -> CourseOverview:
    """Read the course's members from the platform (NRPS), store them, and show the page again
    with what changed. A failed read changes nothing and is reported on the page."""
    if place.context_pk is None:
        raise InvalidInputError(
            "This launch did not come from a course, so there is no roster to read.",
            hint="Open the activity from its course.",
        )
    url = teaching_repo.latest_launch_with_memberships(
        session, place.context_pk, place.registration_id
    )
    report: RosterSyncCounts | None = None
    error: AdaptiveLtiError | None = None
    try:
        if url is None:
            raise InvalidInputError(
                "No launch from this course carried the names and roles service "
                "(NRPS), so the tool cannot read the course's members.",
                hint="Turn on 'IMS LTI Names and Role Provisioning' for the tool on the "
                "platform, then open the activity again.",
            )
        report = roster_service.sync_roster(
            session, place.registration_id, place.context_pk, url, source, now=now
        )
        audit_repo.append(
            session,
            audit_repo.actor_of_user(session, place.user_pk),
            AuditAction.roster_sync,
            place.registration_id,
            f"course {place.context_pk}",
            dataclasses.asdict(report),
            now=now,
        )
    except (PlatformServiceError, InvalidInputError) as failure:
        error = failure
    overview = course_overview(session, place)
    return dataclasses.replace(overview, sync_report=report, sync_error=error)


def instructor_name(session: Session, place: InstructorPlace) -> str:
    return teaching_repo.user_display_name(session, place.user_pk) or "an instructor"
