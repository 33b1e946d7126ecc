"""``branch``: the first case whose condition holds routes the learner into its steps.

The cases are tried in order; ``otherwise`` always holds. A branch with no case that holds lets
the route go on after it (the linter calls that a dead end and says which learners meet it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from adaptive_lti.core.conditions import Condition
from adaptive_lti.core.constructs.base import ERROR, WARNING, Construct, Exit, Path, Progress, merge
from adaptive_lti.core.design import Branch, Step
from adaptive_lti.core.explanation import path_text, values_text
from adaptive_lti.core.learner import Cursor, RouteTaken, StepPath, Value

if TYPE_CHECKING:
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter
    from adaptive_lti.core.route_index import IndexTables


class BranchConstruct(Construct[Branch]):
    key = "branch"
    model = Branch

    def children(self, step: Branch, path: Path) -> Iterator[tuple[Path, tuple[Step, ...]]]:
        for case_index, case in enumerate(step.branch):
            yield (*path, "branch", case_index, "then"), case.then

    def raw_children(self, body: Any, path: Path) -> tuple[Any, list[tuple[Any, Path]]]:
        if not isinstance(body, list):
            return body, []
        cases, nested = [], []
        for case_index, case in enumerate(body):
            if isinstance(case, dict) and "then" in case:
                nested.append((case["then"], (*path, "branch", case_index, "then")))
                case = {key: value for key, value in case.items() if key != "then"}
            cases.append(case)
        return cases, nested

    def index(self, step: Branch, path: StepPath, tables: IndexTables) -> None:
        for case_index, case in enumerate(step.branch):
            tables.cases.setdefault(case.name or f"case {case_index + 1}", []).append(
                (path, case_index)
            )

    def visit(self, walk: Walk, cursor: Cursor, step: Branch) -> Decision | None:
        path = cursor.step
        where = path_text(path)
        rejected: list[tuple[str, str, dict[str, Value]]] = []
        for case_index, case in enumerate(step.branch):
            name = case.name or f"case {case_index + 1}"
            rule = f'branch case "{name}" of {where}'
            values: dict[str, Value] = {}
            if case.otherwise:
                holds = True
            else:
                assert case.when is not None
                holds, values = walk.design.condition(case.when).explain(walk.lookup)
            if not holds:
                assert case.when is not None
                rejected.append((name, case.when, values))
                if walk.explain:
                    walk.note(
                        rule,
                        (*path, "branch", case_index),
                        condition=case.when,
                        result=False,
                        values=values,
                        detail=f"{rule} (case {case_index + 1} of {len(step.branch)}): "
                        f"when {case.when} -> false; read {values_text(values)}",
                    )
                continue
            taken = RouteTaken(
                branch=where,
                case=name,
                index=case_index,
                condition=case.when,
                values=values,
                rejected=tuple(rejected),
            )
            walk.routes = {**walk.routes, where: taken}
            condition = f"when {case.when} -> true" if case.when else "otherwise"
            if walk.explain:
                walk.note(
                    rule,
                    (*path, "branch", case_index),
                    condition=case.when,
                    result=True,
                    values=values,
                    learner=walk.route_sentence(taken) if walk.explain else "",
                    detail=f"{rule} (case {case_index + 1} of {len(step.branch)}) fired: {condition}; "
                    f"read {values_text(values)}",
                )
            walk.enter((*path, "branch", case_index, "then"), path)
            return None
        if walk.explain:
            walk.note(
                f"no case of the branch at {where} applies",
                path,
                detail=f"branch at {where}: no case holds and there is no 'otherwise'; "
                "the route continues after it",
            )
        walk.advance_from(path)

        return None

    def draw(self, drawing: Drawing, step: Branch, exits: list[Exit]) -> list[Exit]:
        decision = drawing.node("branch", "decision")
        drawing.connect(exits, decision)
        after: list[Exit] = []
        for index, case in enumerate(step.branch):
            condition = "otherwise" if case.otherwise else str(case.when)
            label = f"{case.name}: {condition}" if case.name else condition
            after += drawing.steps(case.then, [(decision, label, index)])
        if not any(case.otherwise for case in step.branch):
            after.append((decision, "no case holds", len(step.branch)))
        return after

    def outline(
        self,
        outliner: Outliner,
        step: Branch,
        path: StepPath,
        status: ItemStatus,
        route: str | None,
    ) -> None:
        taken = outliner.state.routes.get(path_text(path))
        if taken is None:
            outliner.add_item(title="Your route is chosen here", kind="route", status=status)
            return
        case = step.branch[taken.index]
        outliner.walk(case.then, (*path, "branch", taken.index, "then"), taken.case)

    def lint(
        self, linter: Linter, step: Branch, path: Path, progress: Progress, live: bool
    ) -> Progress:
        cases = step.branch
        conditions = [linter.compiled.conditions[c.when] for c in cases if c.when is not None]
        learners, exhaustive = linter.learners(conditions, progress)
        taken_by = [0 for _ in cases]
        fall_through: dict[str, Any] | None = None
        for learner in learners:
            for index, case in enumerate(cases):
                if case.otherwise or linter.compiled.conditions[str(case.when)].evaluate(learner):
                    taken_by[index] += 1
                    break
            else:
                fall_through = fall_through or learner
        after: list[Progress] = []
        for index, case in enumerate(cases):
            case_path = (*path, "branch", index)
            name = f"'{case.name}'" if case.name else f"{index + 1}"
            taken = taken_by[index] > 0 or not exhaustive
            if case.when is not None and live:
                condition = linter.compiled.conditions[case.when]
                linter.check_reads(condition, (*case_path, "when"), progress)
                alone = linter.check_condition_alone(
                    condition, (*case_path, "when"), progress, last_case=index == len(cases) - 1
                )
                if not taken and alone is not False:
                    earlier = _shadowing_case(linter, cases[:index], learners, condition)
                    linter.report(
                        (*case_path, "when"),
                        WARNING,
                        "case-never-taken",
                        f"case {name} is never taken: {earlier} already takes every learner "
                        "it would",
                        "reorder the cases or make the earlier condition narrower",
                    )
            elif not taken and live:
                linter.report(
                    (*case_path, "otherwise"),
                    WARNING,
                    "case-never-taken",
                    f"case {name} ('otherwise') is never taken: the cases before it cover "
                    "every learner",
                    "remove it, or check the conditions before it",
                )
            why = f"case {name} of the branch at line {linter.line(path)} is never taken"
            after.append(
                linter.walk(case.then, (*case_path, "then"), progress, live and taken)
                if taken
                else linter.walk_dead(case.then, (*case_path, "then"), progress, why)
            )
        if fall_through is not None:
            after.append(progress)
            if live:
                example = linter.describe(fall_through)
                linter.report(
                    (*path, "branch"),
                    ERROR,
                    "dead-end",
                    f"some learners match no case of this branch and have no route, e.g. {example}",
                    "add a last case 'otherwise: true' (with 'then: []' if they should just go on)",
                    key=True,
                )
        return merge(after)

    def can_skip(self, linter: Linter, step: Branch, progress: Progress) -> bool:
        conditions = [linter.compiled.conditions[c.when] for c in step.branch if c.when is not None]
        learners, _ = linter.learners(conditions, progress)
        # Each case's steps are judged once, not once per learner: nested branches would
        # otherwise multiply their enumerations.
        skippable: dict[int, bool] = {}
        for learner in learners:
            for index, case in enumerate(step.branch):
                if case.otherwise or linter.compiled.conditions[str(case.when)].evaluate(learner):
                    if index not in skippable:
                        skippable[index] = linter.can_skip(case.then, progress)
                    if skippable[index]:
                        return True
                    break
            else:
                return True
        return False


def _shadowing_case(
    linter: Linter, earlier: Sequence[Any], learners: list[dict[str, Any]], condition: Condition
) -> str:
    for index, case in enumerate(earlier):
        if case.otherwise:
            return "'otherwise'"
        earlier_condition = linter.compiled.conditions[str(case.when)]
        if all(
            earlier_condition.evaluate(learner)
            for learner in learners
            if condition.evaluate(learner)
        ):
            return f"case '{case.name}'" if case.name else f"case {index + 1}"
    return "the cases before it"
