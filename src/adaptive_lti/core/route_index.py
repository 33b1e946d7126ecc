"""An index of a design's route, built once per compiled design and shared by every decision:
each step by its path, the steps of each nested list and their owner, and what the constructs
add (``Construct.index``: where an override may put a learner, case names, choice ids, reviews).
It is kept while the compiled design lives (a weak reference), so a decision never walks the
whole route to find its place.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.constructs.base import ROUTE
from adaptive_lti.core.design import ReviewSpec, Step
from adaptive_lti.core.learner import Cursor, StepPath


@dataclass
class IndexTables:
    """What the constructs add to the index (``Construct.index``) while it is built."""

    locations: dict[str, list[Cursor]] = field(default_factory=dict)  # activity -> override spots
    cases: dict[str, list[tuple[StepPath, int]]] = field(default_factory=dict)  # name -> cases
    choices: dict[str, StepPath] = field(default_factory=dict)  # choose id -> its step
    reviews: list[tuple[StepPath, ReviewSpec]] = field(default_factory=list)


@dataclass(frozen=True)
class DesignIndex:
    steps: dict[StepPath, Step]
    containers: dict[StepPath, tuple[Step, ...]]
    owner: dict[StepPath, StepPath]  # a container (a case's or variant's then) -> its step
    reviews: tuple[tuple[StepPath, ReviewSpec], ...]
    cases: dict[str, list[tuple[StepPath, int]]]  # case name -> (branch path, case index)
    choices: dict[str, StepPath]  # choose id -> its step
    locations: dict[str, list[Cursor]]  # activity -> where an override can put the learner
    order: dict[StepPath, int]  # depth-first position, for "progress"
    cursors: dict[StepPath, Cursor]  # the cursor at the start of each step (made once)


_INDEXES: dict[int, tuple[weakref.ref[CompiledDesign], DesignIndex]] = {}


def design_index(design: CompiledDesign) -> DesignIndex:
    key = id(design)
    entry = _INDEXES.get(key)
    if entry is not None and entry[0]() is design:
        return entry[1]
    index = _build_index(design)
    _INDEXES[key] = (weakref.ref(design, lambda _ref: _INDEXES.pop(key, None)), index)
    return index


def _build_index(design: CompiledDesign) -> DesignIndex:
    steps: dict[StepPath, Step] = {}
    containers: dict[StepPath, tuple[Step, ...]] = {ROUTE: design.design.route}
    owner: dict[StepPath, StepPath] = {}
    tables = IndexTables()
    for path, step in iter_steps(design.design.route, ROUTE):
        steps[path] = step
        if isinstance(step, str):
            tables.locations.setdefault(step, []).append(Cursor(step=path))
            continue
        construct = construct_of(step)
        for container, nested in construct.children(step, path):
            containers[container], owner[container] = nested, path
        construct.index(step, path, tables)
    order = {path: number for number, path in enumerate(steps)}
    cursors = {path: Cursor(step=path) for path in steps}
    return DesignIndex(
        steps,
        containers,
        owner,
        tuple(tables.reviews),
        tables.cases,
        tables.choices,
        tables.locations,
        order,
        cursors,
    )
