"""``choose``: the learner picks activities from a set (``pick: k`` or ``min``/``max``), does the
required ones and their picks in order, then the route goes on. The pick is a ``Chose`` event,
checked here (``apply_choice``) before it changes the route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_lti.core.constructs.base import (
    ERROR,
    WARNING,
    Construct,
    Exit,
    Path,
    Progress,
    title_of,
)
from adaptive_lti.core.design import Choose
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import Chose
from adaptive_lti.core.explanation import path_text
from adaptive_lti.core.learner import Cursor, StepPath

if TYPE_CHECKING:
    from adaptive_lti.core.compiled import CompiledDesign
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter
    from adaptive_lti.core.route_index import IndexTables


class ChooseConstruct(Construct[Choose]):
    key = "choose"
    model = Choose
    raw_reference_fields = ("from", "required")

    def references(self, step: Choose) -> list[tuple[str, str]]:
        return [("from", a) for a in step.choose.from_] + [
            ("required", a) for a in step.choose.required
        ]

    def index(self, step: Choose, path: StepPath, tables: IndexTables) -> None:
        tables.choices[step.choose.id] = path

    def visit(self, walk: Walk, cursor: Cursor, step: Choose) -> Decision | None:
        spec = step.choose
        path = cursor.step
        picked = walk.choices.get(spec.id)
        if picked is None:
            return walk.choice_offered(spec, path)
        items = list(dict.fromkeys((*spec.required, *picked)))
        if cursor.item >= len(items):
            walk.advance_from(path)
            return None
        decision = walk.slot(items[cursor.item], "choice", path, gate=True)
        if decision is None:
            walk.offer = None
            walk.cursor = Cursor(step=path, phase="items", item=cursor.item + 1)
        return decision

    def draw(self, drawing: Drawing, step: Choose, exits: list[Exit]) -> list[Exit]:
        choice_spec = step.choose
        if choice_spec.pick is not None:
            count = f"{choice_spec.pick}"
        elif choice_spec.max is None:
            count = f"at least {choice_spec.least}"
        else:
            count = f"{choice_spec.least} to {choice_spec.most}"
        offered = len(choice_spec.from_)
        choice = drawing.node(f"choose {count} of {offered}: {choice_spec.prompt}", "choice")
        drawing.connect(exits, choice)
        after = []
        offers = [(a, "required") for a in choice_spec.required]
        offers += [(a, "if chosen") for a in choice_spec.from_]
        for rank, (activity_id, label) in enumerate(offers):
            target = drawing.activity(activity_id)
            drawing.edge(choice, target, label, rank=rank)
            after.append((target, "", 0))
        return after

    def outline(
        self,
        outliner: Outliner,
        step: Choose,
        path: StepPath,
        status: ItemStatus,
        route: str | None,
    ) -> None:
        picked = outliner.state.choices.get(step.choose.id)
        if picked is None:
            outliner.add_item(title=step.choose.prompt, kind="choice", status=status)
            return
        for activity_id in dict.fromkeys((*step.choose.required, *picked)):
            item_status = status
            if status == "current":
                outcome = outliner.state.outcome(activity_id)
                offered_now = outliner.state.offer.activity if outliner.state.offer else None
                item_status = (
                    "current"
                    if offered_now == activity_id
                    else ("done" if outcome.completed else "upcoming")
                )
            outliner.activity(activity_id, item_status, route)

    def lint(
        self, linter: Linter, step: Choose, path: Path, progress: Progress, live: bool
    ) -> Progress:
        spec = step.choose
        here = (*path, "choose")
        for activity in (*spec.from_, *spec.required):
            linter.mark(activity, live)
        offered = list(dict.fromkeys(spec.from_))
        if len(offered) != len(spec.from_):
            twice = sorted({a for a in spec.from_ if spec.from_.count(a) > 1})
            linter.report(
                (*here, "from"),
                WARNING,
                "choice-overlap",
                f"'from' lists {', '.join(repr(a) for a in twice)} more than once",
                "list each activity once",
            )
        both = [activity for activity in offered if activity in spec.required]
        if both:
            linter.report(
                (*here, "required"),
                WARNING,
                "choice-overlap",
                f"{', '.join(repr(a) for a in both)} is both required and on offer",
                "required activities are done by everyone: remove them from 'from'",
            )
        available = len([activity for activity in offered if activity not in spec.required])
        if spec.pick is not None and spec.pick > available:
            linter.report(
                (*here, "pick"),
                ERROR,
                "choice-impossible",
                f"learners must pick {spec.pick}, but only {available} "
                f"activit{'y is' if available == 1 else 'ies are'} on offer",
                "offer more activities or lower 'pick'",
            )
        if spec.min is not None and spec.min > available:
            linter.report(
                (*here, "min"),
                ERROR,
                "choice-impossible",
                f"learners must pick at least {spec.min}, but only {available} "
                f"activit{'y is' if available == 1 else 'ies are'} on offer",
                "offer more activities or lower 'min'",
            )
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            linter.report(
                (*here, "min"),
                ERROR,
                "choice-impossible",
                f"'min' ({spec.min}) is more than 'max' ({spec.max})",
                "swap them",
            )
        elif spec.max is not None and spec.max > available:
            linter.report(
                (*here, "max"),
                WARNING,
                "choice-impossible",
                f"'max' is {spec.max}, but only {available} activities are on offer",
                f"lower 'max' to {available}",
            )
        if spec.least == 0 and not spec.required:
            linter.report(
                here,
                WARNING,
                "choice-may-be-empty",
                f"learners may choose nothing at '{spec.id}'",
                "set 'min: 1' (or 'pick: 1'), or add 'required' activities",
                key=True,
            )
        chosen_by_all = offered if spec.least >= available else []
        return progress.having_done(*spec.required, *chosen_by_all).maybe_done(*offered)

    def can_skip(self, linter: Linter, step: Choose, progress: Progress) -> bool:
        return not (step.choose.least > 0 or step.choose.required)


def apply_choice(walk: Walk, design: CompiledDesign, event: Chose) -> None:
    path = walk.index.choices.get(event.choice)
    if path is None:
        raise EngineError(
            f"the design has no choice '{event.choice}'",
            hint="choices: " + (", ".join(walk.index.choices) or "none"),
        )
    step = walk.index.steps[path]
    assert isinstance(step, Choose)
    spec = step.choose
    if event.choice in walk.choices:
        raise EngineError(
            f"the choice '{event.choice}' was already made "
            f"({', '.join(walk.choices[event.choice])})",
            hint="an instructor can override the learner's route",
        )
    if walk.cursor is None or walk.cursor.step != path or walk.interruption is not None:
        raise EngineError(
            f"the choice '{event.choice}' is not open now",
            hint="choices are made when the route reaches them",
        )
    options = [a for a in spec.from_ if a not in spec.required]
    unknown = [a for a in event.picked if a not in options]
    if unknown:
        raise EngineError(
            f"{', '.join(repr(a) for a in unknown)} cannot be picked in '{event.choice}'",
            hint="pick from: " + ", ".join(options),
        )
    if len(set(event.picked)) != len(event.picked):
        raise EngineError("the same activity was picked twice", hint="pick each activity once")
    least, most = spec.least, min(spec.most, len(options))
    if not least <= len(event.picked) <= most:
        count = str(least) if least == most else f"between {least} and {most}"
        raise EngineError(
            f"{len(event.picked)} picked in '{event.choice}', but {count} must be picked",
            hint="pick from: " + ", ".join(options),
        )
    walk.choices = {**walk.choices, event.choice: event.picked}
    walk.cursor = Cursor(step=path, phase="items", item=0)
    walk.offer = None
    titles = ", ".join(title_of(design, a) for a in event.picked) or "nothing"
    walk.note(
        f"choice '{event.choice}' made",
        path,
        learner=f"You chose {titles}.",
        detail=f"choice '{event.choice}' at {path_text(path)}: learner picked "
        f"{', '.join(event.picked) or 'nothing'}",
    )
