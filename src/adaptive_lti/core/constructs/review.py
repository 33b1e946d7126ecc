"""``review``: a spaced review. When the step is reached and ``after`` has passed since the
learner completed ``of``, the review activity is offered; otherwise the step is skipped. A review
that falls due later interrupts the route between activities (``start_due_review``), never while
the learner is answering a check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_lti.core.conditions import duration_seconds
from adaptive_lti.core.constructs.base import (
    WARNING,
    Construct,
    Exit,
    Path,
    Progress,
    title_of,
)
from adaptive_lti.core.design import Review, ReviewSpec
from adaptive_lti.core.explanation import lower_title, path_text, values_text
from adaptive_lti.core.learner import Cursor, Interruption, StepPath, Value

if TYPE_CHECKING:
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter
    from adaptive_lti.core.route_index import IndexTables


class ReviewConstruct(Construct[Review]):
    key = "review"
    model = Review
    raw_reference_fields = ("activity", "of")

    def references(self, step: Review) -> list[tuple[str, str]]:
        return [("activity", step.review.activity), ("of", step.review.of)]

    def activities(self, step: Review) -> list[str]:
        return [step.review.activity]

    def watches(self, step: Review) -> list[str]:
        return [step.review.of]

    def index(self, step: Review, path: StepPath, tables: IndexTables) -> None:
        tables.reviews.append((path, step.review))

    def visit(self, walk: Walk, cursor: Cursor, step: Review) -> Decision | None:
        spec = step.review
        path, key = cursor.step, path_text(cursor.step)
        if key in walk.reviews:
            walk.advance_from(path)
            return None
        if cursor.phase == "review":
            decision = walk.slot(spec.activity, "review", path, gate=False)
            if decision is None:
                walk.reviews = {**walk.reviews, key: "done"}
                walk.advance_from(path)
            return decision
        due, elapsed = _review_due(walk, spec)
        values: dict[str, Value] = {f"since({spec.of})": elapsed}
        if due:
            _note_review(walk, spec, key, elapsed)
            walk.offer = None
            walk.cursor = Cursor(step=path, phase="review")
            return None
        walk.reviews = {**walk.reviews, key: "skipped"}
        if walk.explain:
            walk.note(
                f"review at {key} skipped",
                path,
                values=values,
                detail=f"review at {key}: since({spec.of}) is "
                f"{values_text(values).split(' = ')[1]} < {spec.after} when the step was reached; "
                "skipped",
            )
        walk.advance_from(path)
        return None

    def draw(self, drawing: Drawing, step: Review, exits: list[Exit]) -> list[Exit]:
        spec_review = step.review
        review = drawing.activity(spec_review.activity)
        due = f"{spec_review.after} after {spec_review.of}"
        drawing.connect(
            [(source, f"{label} · {due}" if label else due, rank) for source, label, rank in exits],
            review,
        )
        skips = [(source, label or "review not due", rank) for source, label, rank in exits]
        return [(review, "", 0), *skips]

    def outline(
        self,
        outliner: Outliner,
        step: Review,
        path: StepPath,
        status: ItemStatus,
        route: str | None,
    ) -> None:
        key = path_text(path)
        done = outliner.state.reviews.get(key) == "done"
        interrupted = (
            outliner.state.interruption is not None
            and outliner.state.interruption.kind == "review"
            and outliner.state.interruption.key == key
        )
        if done or interrupted or status == "current":
            outliner.activity(
                step.review.activity,
                "done" if done else "current",
                route,
            )

    def lint(
        self, linter: Linter, step: Review, path: Path, progress: Progress, live: bool
    ) -> Progress:
        spec = step.review
        here = (*path, "review")
        due = spec.of in progress.may
        linter.mark(spec.activity, live and due, f"its review of '{spec.of}' is never due")
        if spec.activity == spec.of:
            linter.report(
                (*here, "activity"),
                WARNING,
                "loop-without-exit",
                f"'{spec.of}' is a review of itself",
                "name a separate review activity (e.g. a short check on the same skills)",
            )
        if not due:
            linter.report(
                (*here, "of"),
                WARNING,
                "review-never-due",
                f"the review is never due: no learner has done '{spec.of}' when they reach it",
                f"place the review after '{spec.of}' on the route",
            )
        return progress.maybe_done(spec.activity)


def start_due_review(walk: Walk) -> bool:
    """Interrupt with a review that is due and whose step the learner has not yet passed."""
    if walk.cursor is None or not walk.index.reviews:
        return False
    here = walk.cursor.step
    for path, spec in walk.index.reviews:
        key = path_text(path)
        if key in walk.reviews:
            continue
        if _review_done(walk, spec):
            walk.reviews = {**walk.reviews, key: "done"}
            continue
        container, position = path[:-1], path[-1]
        depth = len(container)
        ahead = (
            len(here) > depth
            and here[:depth] == container
            and isinstance(here[depth], int)
            and here[depth] < position  # type: ignore[operator]
        )
        if not ahead:
            continue
        due, elapsed = _review_due(walk, spec)
        if due:
            _note_review(walk, spec, key, elapsed)
            walk.interruption = Interruption(
                kind="review",
                activity=spec.activity,
                key=key,
                baseline=walk.state.outcome(spec.activity).attempts,
            )
            return True
    return False


def _review_due(walk: Walk, spec: ReviewSpec) -> tuple[bool, float | None]:
    completed_at = walk.state.outcome(spec.of).completed_at
    if completed_at is None:
        return False, None
    elapsed = (walk.now - completed_at).total_seconds()
    return elapsed >= duration_seconds(spec.after), elapsed


def _review_done(walk: Walk, spec: ReviewSpec) -> bool:
    """The review activity was completed once the review was due (not merely before)."""
    of_at = walk.state.outcome(spec.of).completed_at
    done_at = walk.state.outcome(spec.activity).completed_at
    if of_at is None or done_at is None:
        return False
    return (done_at - of_at).total_seconds() >= duration_seconds(spec.after)


def _note_review(walk: Walk, spec: ReviewSpec, key: str, elapsed: float | None) -> None:
    values: dict[str, Value] = {f"since({spec.of})": elapsed}
    shown = values_text(values).split(" = ")[1]
    if walk.explain:
        walk.note(
            f"spaced review at {key} due",
            key,
            values=values,
            learner=f"It has been {shown} since you completed "
            f"{lower_title(title_of(walk.design, spec.of))}: a short review now helps you remember.",
            detail=f"review at {key}: since({spec.of}) = {shown} >= {spec.after}; "
            f"'{spec.activity}' offered",
        )
