"""Moving a learner to a newer version of their design: only when that version declares a mapping
(``migrations:``) for the activity the learner is at, so nobody is moved to a place the designer
did not choose; everything else they did is kept.
"""

from __future__ import annotations

from datetime import datetime

from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import Migrated
from adaptive_lti.core.learner import LearnerState, Offer
from adaptive_lti.core.route_index import design_index


def migrate_state(
    state: LearnerState,
    new: CompiledDesign,
    from_version: int,
    at: datetime,
    event: Migrated | None,
) -> LearnerState:
    if state.design != new.id or state.version != from_version:
        raise EngineError(
            f"cannot migrate: the learner is on '{state.design}' version {state.version}",
            hint=f"migrations to version {new.version} start from version {from_version}",
        )
    migration = next((m for m in new.design.migrations if m.from_version == state.version), None)
    current = state.interruption.activity if state.interruption else None
    current = current or (state.offer.activity if state.offer else None)
    if migration is None or current is None or current not in migration.activities:
        raise EngineError(
            f"version {new.version} declares no migration for a learner at "
            f"'{current or 'no activity'}' on version {state.version}",
            hint="the learner stays on the version they started",
        )
    target = migration.activities[current]
    index = design_index(new)
    renamed = migration.activities
    outcomes = {renamed.get(a, a): o for a, o in state.outcomes.items()}
    outcomes = {a: o for a, o in outcomes.items() if a in new.design.activities}
    places = index.locations.get(target)
    if not places:
        raise EngineError(
            f"the migration maps '{current}' to '{target}', which is not a step of the route "
            f"of version {new.version}",
            hint="map the learner's activity to an activity the new route contains",
        )
    attempts = outcomes[target].attempts if target in outcomes else 0
    # Routes, remediation rounds and reviews are keyed by paths of the old route, which mean
    # nothing in the new one: the learner continues from the mapped activity without them.
    return LearnerState(
        design=state.design,
        version=new.version,
        attributes={a: v for a, v in state.attributes.items() if a in new.design.attributes},
        attribute_sources={
            a: v for a, v in state.attribute_sources.items() if a in new.design.attributes
        },
        outcomes=outcomes,
        mastery={s: p for s, p in state.mastery.items() if s in new.design.skills},
        choices={c: p for c, p in state.choices.items() if c in index.choices},
        groups=state.groups,
        flags=state.flags,
        cursor=places[0],
        offer=Offer(activity=target, baseline=attempts, reason="route"),
        override=state.override,
        events=state.events + (1 if event is not None else 0),
        updated_at=at,
    )


def migrate(
    state: LearnerState, new_design: CompiledDesign, now: datetime
) -> tuple[LearnerState, Migrated] | None:
    """Move the learner to ``new_design`` if it declares a migration covering where they are.

    Returns the new state and the ``migrated`` event to record, or None: the learner stays on the
    version they started (a published version never changes under a learner).
    """
    try:
        moved = migrate_state(state, new_design, state.version, now, None)
    except EngineError:
        return None
    target = moved.offer.activity if moved.offer else None
    event = Migrated(
        at=now, from_version=state.version, to_version=new_design.version, activity=target
    )
    return moved.model_copy(update={"events": state.events + 1}), event
