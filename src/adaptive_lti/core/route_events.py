"""The events that move a learner's route from outside the activities: a launch (a due review may
interrupt then), a learner's choice (``constructs/choose.py`` checks it), an instructor's override
(to a named branch case, or to an activity, anywhere on the route or off it) and a reset. Each
says who did it and why in the trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.constructs.base import title_of
from adaptive_lti.core.constructs.choose import apply_choice
from adaptive_lti.core.design import Branch
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import Chose, Event, Launched, Overridden, Reset
from adaptive_lti.core.explanation import path_text
from adaptive_lti.core.learner import (
    Interruption,
    LearnerState,
    Offer,
    OverrideNote,
    RouteTaken,
    StepPath,
)

if TYPE_CHECKING:
    from adaptive_lti.core.engine import Walk  # the walk passes itself in


def apply_routing_event(walk: Walk, design: CompiledDesign, event: Event) -> None:
    if isinstance(event, Launched):
        walk.may_interrupt = True
    elif isinstance(event, Chose):
        apply_choice(walk, design, event)
    elif isinstance(event, Overridden):
        _apply_override(walk, design, event)


def _apply_override(walk: Walk, design: CompiledDesign, event: Overridden) -> None:
    why = f": {event.reason}" if event.reason else ""
    if event.route is not None:
        places = walk.index.cases.get(event.route, [])
        if len(places) != 1:
            problem = "no branch case" if not places else f"{len(places)} branch cases"
            raise EngineError(
                f"{problem} named '{event.route}' in the design",
                hint="route names: " + ", ".join(sorted(walk.index.cases)),
            )
        path, case_index = places[0]
        where = path_text(path)
        walk.routes = {
            **walk.routes,
            where: RouteTaken(
                branch=where, case=event.route, index=case_index, by=event.by, reason=event.reason
            ),
        }
        walk.finished, walk.interruption = False, None
        walk.override = OverrideNote(
            by=event.by, reason=event.reason, at=event.at, target=f"route {event.route}"
        )
        walk.note(
            f"instructor override to route '{event.route}'",
            path,
            learner=f"Your instructor moved you to the {event.route} route{why}.",
            result=True,
            detail=f"override by {event.by}: route '{event.route}' ({where}, case "
            f"{case_index + 1}){' - ' + event.reason if event.reason else ''}",
        )
        walk.enter((*path, "branch", case_index, "then"), path)
        return
    assert event.activity is not None
    if event.activity not in design.design.activities:
        raise EngineError(
            f"unknown activity '{event.activity}'",
            hint="name an activity of this version of the design",
        )
    activity = design.activity(event.activity)
    if walk.attempts_left(activity, walk.state.outcome(event.activity).attempts) == 0:
        raise EngineError(
            f"the learner has no attempts left at '{event.activity}'",
            hint="reset the learner's progress first, or send them to another activity",
        )
    walk.finished = False
    walk.override = OverrideNote(
        by=event.by, reason=event.reason, at=event.at, target=f"activity {event.activity}"
    )
    title = title_of(design, event.activity)
    walk.note(
        f"instructor override to activity '{event.activity}'",
        "",
        learner=f"Your instructor sent you to {title}{why}.",
        detail=f"override by {event.by}: activity '{event.activity}'"
        f"{' - ' + event.reason if event.reason else ''}",
    )
    attempts = walk.state.outcome(event.activity).attempts
    locations = walk.index.locations.get(event.activity)
    if locations:
        walk.interruption = None
        walk.cursor = locations[0]
        _record_enclosing_cases(walk, walk.cursor.step, event)
        walk.offer = Offer(activity=event.activity, baseline=attempts, reason="override")
    else:
        # Not a step of the route (e.g. a review check): do it, then come back to where they were.
        walk.interruption = Interruption(
            kind="assigned", activity=event.activity, baseline=attempts
        )


def _record_enclosing_cases(walk: Walk, step: StepPath, event: Overridden) -> None:
    """An instructor who sends a learner into a branch case puts them on that case's route."""
    for position, part in enumerate(step):
        if part != "branch":
            continue
        branch_path, case_index = step[:position], step[position + 1]
        assert isinstance(case_index, int)
        key = path_text(branch_path)
        taken = walk.routes.get(key)
        if taken is not None and taken.index == case_index:
            continue
        branch = walk.index.steps[branch_path]
        assert isinstance(branch, Branch)
        name = branch.branch[case_index].name or f"case {case_index + 1}"
        walk.routes = {
            **walk.routes,
            key: RouteTaken(
                branch=key, case=name, index=case_index, by=event.by, reason=event.reason
            ),
        }


def reset_state(state: LearnerState, event: Reset) -> LearnerState:
    return LearnerState(
        design=state.design,
        version=state.version,
        attributes=state.attributes,
        attribute_sources=state.attribute_sources,
        groups=state.groups,
        override=OverrideNote(by=event.by, reason=event.reason, at=event.at, target="reset"),
        events=state.events + 1,
        updated_at=event.at,
    )
