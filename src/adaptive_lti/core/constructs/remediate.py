"""``remediate``: a check, and while its score stays below a mark, a remedial lesson and the
check again, up to ``max`` rounds; then (optionally) a flag for the instructor and a support
activity. The learner's round count is kept in ``LearnerState.remediation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_lti.core.conditions import format_value
from adaptive_lti.core.constructs.base import (
    ERROR,
    WARNING,
    Construct,
    Exit,
    Path,
    Progress,
    article,
    title_of,
)
from adaptive_lti.core.design import Check, Remediate
from adaptive_lti.core.explanation import lower_title, path_text
from adaptive_lti.core.learner import Cursor, OfferReason, StepPath, Value

if TYPE_CHECKING:
    from adaptive_lti.core.engine import Decision, Walk
    from adaptive_lti.core.graph import Drawing
    from adaptive_lti.core.journey import ItemStatus, Outliner
    from adaptive_lti.core.lint import Linter
    from adaptive_lti.core.route_index import IndexTables

_PHASES = ("check", "lesson", "support")


class RemediateConstruct(Construct[Remediate]):
    key = "remediate"
    model = Remediate
    raw_reference_fields = _PHASES

    def references(self, step: Remediate) -> list[tuple[str, str]]:
        spec = step.remediate
        refs = [("check", spec.check), ("lesson", spec.lesson)]
        if spec.support:
            refs.append(("support", spec.support))
        return refs

    def index(self, step: Remediate, path: StepPath, tables: IndexTables) -> None:
        # An override can send the learner to any of its activities, at that phase.
        for phase, activity in self.references(step):
            tables.locations.setdefault(activity, []).append(Cursor(step=path, phase=phase))

    def visit(self, walk: Walk, cursor: Cursor, step: Remediate) -> Decision | None:
        spec = step.remediate
        path, key = cursor.step, path_text(cursor.step)
        phase = cursor.phase or "check"
        rounds = walk.remediation.get(key, 0)
        if phase == "check":
            reason: OfferReason = "recheck" if rounds else "route"
            decision = walk.slot(spec.check, reason, path, gate=False)
            if decision is not None:
                return decision
            score = walk.state.outcome(spec.check).score
            title = lower_title(title_of(walk.design, spec.check))
            values: dict[str, Value] = {f"{spec.check}.score": score}
            if score is not None and score >= spec.below:
                if walk.explain:
                    walk.note(
                        f"remediation at {key}: check passed",
                        path,
                        values=values,
                        detail=f"remediate at {key}: {spec.check}.score {format_value(score)} >= "
                        f"{format_value(spec.below)} after {rounds} remedial round(s); continue",
                    )
                walk.advance_from(path)
                return None
            if rounds < spec.max:
                walk.remediation = {**walk.remediation, key: rounds + 1}
                if walk.explain:
                    walk.note(
                        f"remediation at {key}: round {rounds + 1} of {spec.max}",
                        path,
                        values=values,
                        learner=f"Your {title} score was {format_value(score)} (below "
                        f"{format_value(spec.below)}): work through "
                        f"{lower_title(title_of(walk.design, spec.lesson))}, then take the check again "
                        f"(round {rounds + 1} of {spec.max}).",
                        detail=f"remediate at {key}: {spec.check}.score {format_value(score)} < "
                        f"{format_value(spec.below)}; remedial round {rounds + 1} of {spec.max}: "
                        f"'{spec.lesson}' then '{spec.check}' again",
                    )
                walk.offer = None
                walk.cursor = Cursor(step=path, phase="lesson")
                return None
            learner = (
                f"Your {title} score was {format_value(score)}, still below "
                f"{format_value(spec.below)} after {spec.max} remedial rounds"
            )
            if spec.flag is not None:
                walk.flags = {
                    **walk.flags,
                    spec.flag: f"'{spec.check}' below {format_value(spec.below)} after "
                    f"{spec.max} remedial rounds (last score {format_value(score)})",
                }
                learner += ": your instructor has been told, so they can help"
            if walk.explain:
                walk.note(
                    f"remediation at {key}: rounds exhausted",
                    path,
                    values=values,
                    learner=learner + ".",
                    detail=f"remediate at {key}: {spec.check}.score {format_value(score)} < "
                    f"{format_value(spec.below)} after {spec.max} round(s) (max); "
                    + (f"flag '{spec.flag}' raised; " if spec.flag else "")
                    + (f"support '{spec.support}' next" if spec.support else "continue"),
                )
            walk.offer = None
            if spec.support is not None:
                walk.cursor = Cursor(step=path, phase="support")
            else:
                walk.advance_from(path)
            return None
        if phase == "lesson":
            decision = walk.slot(spec.lesson, "remediation", path, gate=False)
            if decision is not None:
                return decision
            walk.offer = None
            walk.cursor = Cursor(step=path, phase="check")
            return None
        assert spec.support is not None
        decision = walk.slot(spec.support, "support", path, gate=False)
        if decision is None:
            walk.advance_from(path)
        return decision

    def draw(self, drawing: Drawing, step: Remediate, exits: list[Exit]) -> list[Exit]:
        spec = step.remediate
        check = drawing.activity(spec.check)
        drawing.connect(exits, check)
        lesson = drawing.activity(spec.lesson)
        below = format_value(spec.below)
        rounds = f"{spec.max} round{'s' if spec.max != 1 else ''}"
        drawing.edge(check, lesson, f"score < {below} (at most {rounds})")
        drawing.edge(lesson, check, "try again", loop=True)
        still = f"still < {below} after {rounds}"
        if spec.flag:
            still += f", flag {spec.flag}"
        if spec.support:
            support = drawing.activity(spec.support)
            drawing.edge(check, support, still, rank=2)
            return [(check, f"score ≥ {below}", 1), (support, "", 0)]
        return [(check, f"score ≥ {below}", 1), (check, still, 2)]

    def outline(
        self,
        outliner: Outliner,
        step: Remediate,
        path: StepPath,
        status: ItemStatus,
        route: str | None,
    ) -> None:
        spec = step.remediate
        if status == "current" and outliner.state.offer is not None:
            offered = outliner.state.offer.activity
            if offered in {spec.lesson, spec.support}:
                outliner.activity(offered, "current", route)
                return
        outliner.activity(spec.check, status, route)

    def lint(
        self, linter: Linter, step: Remediate, path: Path, progress: Progress, live: bool
    ) -> Progress:
        spec = step.remediate
        design = linter.compiled.design
        here = (*path, "remediate")
        check = design.activities[spec.check]
        linter.mark(spec.check, live)
        triggers = spec.below > 0
        linter.mark(spec.lesson, live and triggers, "its remediation never triggers")
        if spec.support:
            linter.mark(spec.support, live and triggers, "its remediation never triggers")
        if not isinstance(check, Check):
            linter.report(
                (*here, "check"),
                ERROR,
                "not-a-check",
                f"'{spec.check}' is {article(check.kind)}: remediation needs a check, whose score "
                "decides whether to repeat",
                "name a check activity here",
            )
        if spec.lesson == spec.check:
            linter.report(
                (*here, "lesson"),
                WARNING,
                "loop-without-exit",
                f"the remediation repeats '{spec.check}' with no lesson in between",
                "name a remedial lesson, so learners are taught before they try again",
            )
        if not triggers:
            linter.report(
                (*here, "below"),
                WARNING,
                "loop-without-exit",
                "the remediation never triggers: no score is below 0",
                "set 'below' to the score that needs help, e.g. 0.7",
            )
        if (
            isinstance(check, Check)
            and check.max_attempts is not None
            and check.max_attempts < spec.max + 1
        ):
            linter.report(
                (*here, "max"),
                WARNING,
                "loop-without-exit",
                f"the remediation may ask for {spec.max + 1} attempts at '{spec.check}', but it "
                f"allows {check.max_attempts}",
                f"raise max_attempts of '{spec.check}' or lower 'max'",
            )
        done = progress.having_done(spec.check)
        extra = [spec.lesson] + ([spec.support] if spec.support else [])
        return done.maybe_done(*extra) if triggers else done

    def can_skip(self, linter: Linter, step: Remediate, progress: Progress) -> bool:
        return False
