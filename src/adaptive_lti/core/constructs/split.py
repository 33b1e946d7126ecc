"""``split``: learners are assigned a variant by weight (an A/B test or a cohort split), stably:
the same learner, design and split always give the same variant, in every process. The variant is
kept in ``LearnerState.groups`` and readable by conditions as ``group.<id>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from adaptive_lti.core.conditions import Symbol, ValueType
from adaptive_lti.core.constructs.base import Construct, Exit, Path, Progress, merge, split_marker
from adaptive_lti.core.design import Split, SplitSpec, Step
from adaptive_lti.core.explanation import path_text
from adaptive_lti.core.learner import Cursor, StepPath

if TYPE_CHECKING:
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter


class SplitConstruct(Construct[Split]):
    key = "split"
    model = Split

    def children(self, step: Split, path: Path) -> Iterator[tuple[Path, tuple[Step, ...]]]:
        for name, variant in step.split.variants.items():
            yield (*path, "split", "variants", name, "then"), variant.then

    def raw_children(self, body: Any, path: Path) -> tuple[Any, list[tuple[Any, Path]]]:
        if not isinstance(body, dict) or not isinstance(body.get("variants"), dict):
            return body, []
        variants, nested = {}, []
        for name, variant in body["variants"].items():
            if isinstance(variant, dict) and "then" in variant:
                nested.append((variant["then"], (*path, "split", "variants", name, "then")))
                variant = {key: value for key, value in variant.items() if key != "then"}
            variants[name] = variant
        return {**body, "variants": variants}, nested

    def symbols(self, step: Split) -> dict[str, Symbol]:
        return {f"group.{step.split.id}": Symbol(ValueType.choice, tuple(step.split.variants))}

    def visit(self, walk: Walk, cursor: Cursor, step: Split) -> Decision | None:
        path, spec = cursor.step, step.split
        variant = walk.groups.get(spec.id)
        assigned_now = variant is None
        if variant is None:
            variant = split_variant(walk.learner_key, walk.design.id, spec)
            walk.set_group(spec.id, variant)
        weights = ", ".join(f"{name} {v.weight:g}" for name, v in spec.variants.items())
        if walk.explain:
            walk.note(
                f'split "{spec.id}" at {path_text(path)}: variant "{variant}"',
                path,
                values={f"group.{spec.id}": variant},
                detail=f'split "{spec.id}" at {path_text(path)}: variant "{variant}" '
                + ("assigned by a stable hash of learner, design and split" if assigned_now else "")
                + ("" if assigned_now else "(kept from the first assignment)")
                + f"; weights {weights}",
            )
        walk.enter((*path, "split", "variants", variant, "then"), path)

        return None

    def draw(self, drawing: Drawing, step: Split, exits: list[Exit]) -> list[Exit]:
        spec_split = step.split
        split = drawing.node(f"split: {spec_split.id}", "split")
        drawing.connect(exits, split)
        total = sum(variant.weight for variant in spec_split.variants.values())
        after = []
        for rank, (name, variant) in enumerate(spec_split.variants.items()):
            share = f"{name} ({variant.weight / total:.0%})"
            after += drawing.steps(variant.then, [(split, share, rank)])
        return after

    def outline(
        self, outliner: Outliner, step: Split, path: StepPath, status: ItemStatus, route: str | None
    ) -> None:
        variant = outliner.state.groups.get(step.split.id)
        if variant is not None:
            then = step.split.variants[variant].then
            outliner.walk(then, (*path, "split", "variants", variant, "then"), route)

    def lint(
        self, linter: Linter, step: Split, path: Path, progress: Progress, live: bool
    ) -> Progress:
        progress = progress.having_done(split_marker(step.split.id))
        outcomes = [
            linter.walk(variant.then, (*path, "split", "variants", name, "then"), progress, live)
            for name, variant in step.split.variants.items()
        ]
        return merge(outcomes)

    def can_skip(self, linter: Linter, step: Split, progress: Progress) -> bool:
        return any(
            linter.can_skip(variant.then, progress) for variant in step.split.variants.values()
        )


def split_variant(learner_key: str, design_id: str, spec: SplitSpec) -> str:
    """The learner's variant: stable across runs and processes (sha256, not the salted hash())."""
    digest = hashlib.sha256(f"{learner_key}\x1f{design_id}\x1f{spec.id}".encode()).digest()
    total = sum(variant.weight for variant in spec.variants.values())
    point = int.from_bytes(digest[:8], "big") / 2.0**64 * total
    cumulative = 0.0
    names = list(spec.variants)
    for name in names:
        cumulative += spec.variants[name].weight
        if point < cumulative:
            return name
    return names[-1]
