"""A learner's journey as values: the enrolment, the snapshot, the outline of the route so far
and what is ahead, and the rows instructors see. Pure: ``db/journey_repo.py`` builds them from
rows and ``services/journey/`` from the engine's state and decisions.

``outline(design, state)`` walks the route the way the learner goes through it: the branch cases
they were put on (not the ones they were not), the activities they picked, reviews that were
due. Each item is done, current or upcoming; ``progress`` is the share done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.design import Intake, Step
from adaptive_lti.core.engine import Decision
from adaptive_lti.core.events import Event
from adaptive_lti.core.explanation import Explanation
from adaptive_lti.core.learner import LearnerState, StepPath

ItemStatus = Literal["done", "current", "upcoming"]


@dataclass(frozen=True)
class Enrolment:
    """A learner on an activity's design, on one version of it."""

    id: int
    registration_id: int
    deployment_pk: int
    context_pk: int | None
    resource_link_pk: int
    # The platform's resource link id (AGS ``resourceLinkId`` of a created line item).
    platform_resource_link_id: str
    user_pk: int
    user_sub: str
    binding_id: int | None
    design_id: str
    design_version: int
    ags_endpoint: Mapping[str, Any] | None
    locale: str | None
    started_at: datetime
    last_launch_at: datetime

    @property
    def learner_key(self) -> str:
        """Stable per person on a platform: seeds split assignment (core.engine.split_variant)."""
        return f"{self.registration_id}:{self.user_sub}"


@dataclass(frozen=True)
class Snapshot:
    """The derived state of an enrolment: what the log says, kept for speed."""

    enrolment_id: int
    state: LearnerState
    decision: Decision
    event_count: int
    progress: float
    grade: float | None
    completed: bool
    passed: bool | None
    flags: tuple[str, ...]
    route: str | None
    updated_at: datetime


@dataclass(frozen=True)
class OutlineItem:
    """One place on the learner's route."""

    title: str
    kind: str  # an activity kind (page, check, ...), "route" (a route still to be chosen), "choice"
    status: ItemStatus
    activity: str | None = None
    score: float | None = None
    route: str | None = None  # the branch case this item belongs to


@dataclass(frozen=True)
class JourneyView:
    """What a learner's page needs: where they are, what to do now, and the way so far."""

    enrolment: Enrolment
    design: CompiledDesign
    state: LearnerState
    decision: Decision
    event_count: int
    outline: tuple[OutlineItem, ...]
    progress: float
    # Set when this request's event was not recorded because the page was out of date.
    stale: bool = False


@dataclass(frozen=True)
class EnrolmentSummary:
    """One learner on an activity, for the instructor's course page."""

    enrolment: Enrolment
    learner_name: str
    decision_kind: str
    activity: str | None
    activity_title: str | None
    route: str | None
    flags: tuple[str, ...]
    needs_help: bool
    progress: float
    grade: float | None
    completed: bool
    passed: bool | None
    event_count: int
    updated_at: datetime


@dataclass(frozen=True)
class TraceItem:
    """One event of the log and the decision the engine made after it."""

    sequence: int
    event: Event
    occurred_at: datetime
    actor: str | None
    note: str | None
    decision_kind: str
    explanation: Explanation


@dataclass(frozen=True)
class DecisionTrace:
    enrolment: Enrolment
    learner_name: str
    items: tuple[TraceItem, ...] = field(default=())


# --- the outline of the route --------------------------------------------------------------------


def _position(path: StepPath, cursor: StepPath) -> ItemStatus | None:
    """Where ``path`` is relative to the cursor: done (before it), current (it or around it),
    upcoming (after it), or None when the two are on different branches of the design."""
    for index, (mine, theirs) in enumerate(zip(path, cursor, strict=False)):
        if mine == theirs:
            continue
        if isinstance(mine, int) and isinstance(theirs, int) and index > 0:
            return "done" if mine < theirs else "upcoming"
        return None
    return "current"


class Outliner:
    def __init__(self, design: CompiledDesign, state: LearnerState) -> None:
        self.design = design
        self.state = state
        self.items: list[OutlineItem] = []

    def status(self, path: StepPath) -> ItemStatus:
        if self.state.finished:
            return "done"
        cursor = self.state.cursor
        if cursor is None:
            return "upcoming"
        return _position(path, cursor.step) or "upcoming"

    def activity(
        self, activity_id: str, status: ItemStatus, route: str | None, *, kind: str = ""
    ) -> None:
        activity = self.design.activity(activity_id)
        outcome = self.state.outcome(activity_id)
        if status == "current" and outcome.completed and self.state.offer is not None:
            # Inside a composite step (a remediation, a choice): only the offered one is current.
            status = "current" if self.state.offer.activity == activity_id else "done"
        self.items.append(
            OutlineItem(
                title=activity.title,
                kind=kind or activity.kind,
                status=status,
                activity=activity_id,
                score=outcome.score,
                route=route,
            )
        )

    def add_item(self, *, title: str, kind: str, status: ItemStatus) -> None:
        self.items.append(OutlineItem(title=title, kind=kind, status=status))

    def walk(self, steps: tuple[Step, ...], base: StepPath, route: str | None) -> None:
        for index, step in enumerate(steps):
            path = (*base, index)
            status = self.status(path)
            if isinstance(step, str):
                activity = self.design.activity(step)
                if isinstance(activity, Intake) and status == "upcoming":
                    known = all(a in self.state.attributes for a in activity.ask)
                    if known:
                        continue
                self.activity(step, status, route)
            else:
                construct_of(step).outline(self, step, path, status, route)


def outline(design: CompiledDesign, state: LearnerState) -> tuple[tuple[OutlineItem, ...], float]:
    """The learner's route, item by item, and the share of it done (0..1)."""
    outliner = Outliner(design, state)
    outliner.walk(design.design.route, ("route",), None)
    items = outliner.items
    if state.interruption is not None and state.interruption.kind == "assigned":
        assigned = design.activity(state.interruption.activity)
        items = [
            OutlineItem(
                title=assigned.title,
                kind=assigned.kind,
                status="current",
                activity=state.interruption.activity,
                route=None,
            )
            if item.status == "current"
            else item
            for item in items
        ]
    if state.finished:
        return tuple(items), 1.0
    done = sum(1 for item in items if item.status == "done")
    return tuple(items), round(done / max(len(items), 1), 4)
