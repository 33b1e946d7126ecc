"""The one seam every composite step stands behind, and what the construct modules share.

A construct (branch, remediate, choose, split, review) is a subclass of ``Construct``: the
engine, the loader, the linter and the compiler ask it, never the step's type, so a new construct
is a new module here (and its model in ``core/design.py``), not an edit in the middle of three
long files. Everything has a default meaning "this construct has none of it"; a construct
overrides only what it has.

The walk (``core/engine.py``) and the linter (``core/lint.py``) pass themselves in; they are
imported here only for type checking, so the dependency runs one way at run time:
engine/lint -> constructs -> design, learner, explanation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from adaptive_lti.core.conditions import Symbol
from adaptive_lti.core.design import Step
from adaptive_lti.core.learner import Cursor, StepPath

if TYPE_CHECKING:
    from adaptive_lti.core.compiled import CompiledDesign
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter
    from adaptive_lti.core.route_index import IndexTables

# A location inside the design document, as keys and list indexes: ("route", 2, "branch", 0).
Path = tuple[str | int, ...]

ROUTE: StepPath = ("route",)
# An edge of the route drawing waiting for the next node: (source node id, label, rank).
Exit = tuple[str, str, int]
ERROR = "error"  # the severities of a linter's problems
WARNING = "warning"
DONE = None  # a slot returns None when its activity is done and the route may move on

StepT = TypeVar("StepT", bound=BaseModel)


class Construct(ABC, Generic[StepT]):
    """How one kind of composite step nests, what it names, how it is walked and judged.

    ``visit``, ``draw``, ``outline`` and ``lint`` are what every construct must say; the rest
    have defaults meaning "none"."""

    key: ClassVar[str]  # its YAML key, e.g. "branch"
    model: ClassVar[type[BaseModel]]  # its model in core/design.py
    # Keys of its raw YAML body that name activities (for "unknown activity" before validation).
    raw_reference_fields: ClassVar[tuple[str, ...]] = ()

    # -- the shape of the route --

    def children(self, step: StepT, path: Path) -> Iterator[tuple[Path, tuple[Step, ...]]]:
        """The lists of steps nested in ``step`` (a case's or a variant's ``then``)."""
        return iter(())

    def raw_children(self, body: Any, path: Path) -> tuple[Any, list[tuple[Any, Path]]]:
        """For the loader, before validation: ``body`` without its nested step lists, and those
        lists with their paths, so each nested step is checked on its own."""
        return body, []

    def references(self, step: StepT) -> list[tuple[str, str]]:
        """(field, activity id) for every activity the step names."""
        return []

    def activities(self, step: StepT) -> list[str]:
        """The activities a learner may be offered at this step."""
        return [activity for _, activity in self.references(step)]

    def watches(self, step: StepT) -> list[str]:
        """Activities whose completion the step asks about (a review's ``of``)."""
        return []

    def symbols(self, step: StepT) -> dict[str, Symbol]:
        """Names the step adds for conditions to read (a split's ``group.<id>``)."""
        return {}

    # -- the engine --

    def index(self, step: StepT, path: StepPath, tables: IndexTables) -> None:
        """Add what the engine looks up about this step to its per-design index."""

    @abstractmethod
    def visit(self, walk: Walk, cursor: Cursor, step: StepT) -> Decision | None:
        """Move the walk at this step: a decision for the learner, or None to walk on."""

    # -- the route drawing (core/graph.py) --

    @abstractmethod
    def draw(self, drawing: Drawing, step: StepT, exits: list[Exit]) -> list[Exit]:
        """Its nodes and edges, joined to ``exits``; the edges that leave it, for the next step."""

    # -- the learner's outline of their route (core/journey.py) --

    @abstractmethod
    def outline(
        self, outliner: Outliner, step: StepT, path: StepPath, status: ItemStatus, route: str | None
    ) -> None:
        """Add what the learner sees of this step to their outline (route: the case they are on)."""

    # -- the linter --

    @abstractmethod
    def lint(
        self, linter: Linter, step: StepT, path: Path, progress: Progress, live: bool
    ) -> Progress:
        """Report this step's problems; what learners have done after it."""

    def can_skip(self, linter: Linter, step: StepT, progress: Progress) -> bool:
        """Whether some learner gets through this step without doing any activity."""
        return True


# --- shared by the engine's visits ---------------------------------------------------------------


def title_of(design: CompiledDesign, activity_id: str) -> str:
    return design.design.activities[activity_id].title


# --- shared by the linter's rules: what learners have done at a point of the route ----------------


@dataclass(frozen=True)
class Progress:
    """Activities every learner here has completed (``must``) and that some may have (``may``).

    Only the ``watched`` activities are tracked (None: all) — those whose completion something
    asks about (a condition, a review, an intake). Tracking every activity would copy sets the
    size of the design at every step: quadratic in the design's size.
    """

    must: frozenset[str] = frozenset()
    may: frozenset[str] = frozenset()
    watched: frozenset[str] | None = field(default=None, compare=False)

    def _tracked(self, activities: Iterable[str]) -> frozenset[str]:
        added = frozenset(activities)
        return added if self.watched is None else added & self.watched

    def having_done(self, *activities: str) -> Progress:
        added = self._tracked(activities)
        if added <= self.must:
            return self
        return Progress(self.must | added, self.may | added, self.watched)

    def maybe_done(self, *activities: str) -> Progress:
        added = self._tracked(activities)
        if added <= self.may:
            return self
        return Progress(self.must, self.may | added, self.watched)


def merge(paths: Sequence[Progress]) -> Progress:
    """Where alternative routes meet: done by all of them (must), by any (may)."""
    if not paths:
        return Progress()
    return Progress(
        frozenset.intersection(*(p.must for p in paths)),
        frozenset.union(*(p.may for p in paths)),
        paths[0].watched,
    )


def split_marker(split_id: str) -> str:
    """Stands in ``Progress`` for "the learner has reached split ``split_id``" (no activity id
    contains a colon)."""
    return f"split:{split_id}"


def article(kind: str) -> str:
    """ "a page", "an intake"."""
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"
