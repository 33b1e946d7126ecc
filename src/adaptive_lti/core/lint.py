"""The design linter: mistakes a loaded design can still hold, found before any learner meets them.

``lint(compiled)`` walks the route once, keeping what every learner has certainly done (``must``)
and what some learner may have done (``may``) at each step. That tells which values a condition
can read there (a score of an activity not yet done is unknown; a page has no score at all), and
the reasoning helpers below enumerate those values to decide what a branch does for every kind of
learner: which cases are taken, which never are, and who falls through.

Static reasoning over conditions is exact for what the language can say: a comparison of a
number with constants only changes truth at those constants, so the constants, the points between
them and the declared bounds cover every case. Choice domains and booleans are enumerated as they
are. When the product of the domains exceeds ``MAX_COMBINATIONS`` we sample it (seeded), and then
only report what a sampled learner proves (a dead end), never "always" or "never".

Codes (errors stop ``adaptive-lti check``; warnings only with ``--strict``):

=========================  =======  ==============================================================
code                       level    meaning
=========================  =======  ==============================================================
dead-end                   error    a branch without ``otherwise`` that some learners match no case of
choice-impossible          error    a choice that cannot be satisfied (pick > offered, min > max, ...)
satisfied-on-entry         error    the design counts as done before any activity is
never-passed               error    ``passed_when`` can never hold
not-a-check                error    a remediation or the grade uses an activity that has no score
unreachable-activity       warning  an activity no learner can reach
case-never-taken           warning  a branch case that is never taken (always false, or shadowed)
condition-always-true      warning  a condition that holds for every learner
condition-never-true       warning  a condition that holds for no learner
read-before-done           warning  a condition reads the result of an activity not done yet
no-score                   warning  a condition reads ``.score`` of an activity that is not a check
loop-without-exit          warning  remediation that repeats a check without a lesson, never triggers,
                                    or outlives the check's attempts; a review of itself
review-never-due           warning  a review of an activity no learner has done at that point
choice-may-be-empty        warning  a choice a learner can leave empty
choice-overlap             warning  a choice listing an activity twice, or as required and on offer
unused-attribute           warning  an attribute no condition reads and no intake asks
unused-skill               warning  a skill no question gives evidence for (its mastery never changes)
intake-source              warning  an intake asks an attribute whose sources do not include intake
invalid-default            error    an attribute's default outside its type or domain (warning:
                                    a label for a value the attribute does not have)
migration-kind             warning  a migration maps an activity to one of another kind
=========================  =======  ==============================================================
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.conditions import All as AllNode
from adaptive_lti.core.conditions import Any_ as AnyNode
from adaptive_lti.core.conditions import (
    Compare,
    Condition,
    Literal,
    Member,
    Name,
    Node,
    Symbol,
    ValueType,
    format_duration,
)
from adaptive_lti.core.conditions import Not as NotNode
from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.constructs.base import (
    ERROR,
    WARNING,
    Progress,
    article,
    split_marker,
)
from adaptive_lti.core.design import (
    Attribute,
    AttributeSource,
    AttributeType,
    Check,
    DesignMoveOn,
    Intake,
    Step,
)
from adaptive_lti.core.errors import Problem, cap_problems
from adaptive_lti.core.source import Path

MAX_COMBINATIONS = 4096
OTHER_TEXT = "(any other text)"


# --- pure reasoning helpers ------------------------------------------------------------------------


def constants_by_name(trees: Iterable[Node]) -> dict[str, set[Any]]:
    """Every constant each name is compared with, across ``trees``.

    When two names are compared with each other, each borrows the other's constants, so that
    both sides can take the values where the comparison changes.
    """
    constants: dict[str, set[Any]] = {}
    pairs: list[tuple[str, str]] = []

    def visit(node: Node) -> None:
        match node:
            case AllNode(operands) | AnyNode(operands):
                for operand in operands:
                    visit(operand)
            case NotNode(operand):
                visit(operand)
            case Member(subject, options):
                constants.setdefault(subject.key, set()).update(o.value for o in options)
            case Compare(Name() as left, _, Literal() as right):
                constants.setdefault(left.key, set()).add(right.value)
            case Compare(Literal() as left, _, Name() as right):
                constants.setdefault(right.key, set()).add(left.value)
            case Compare(Name() as left, _, Name() as right):
                constants.setdefault(left.key, set())
                constants.setdefault(right.key, set())
                pairs.append((left.key, right.key))
            case _:
                pass

    for tree in trees:
        visit(tree)
    for left, right in pairs:
        shared = constants[left] | constants[right]
        constants[left] = constants[right] = set(shared)
    return constants


def number_candidates(
    constants: Iterable[float],
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    integer: bool = False,
) -> tuple[float, ...]:
    """Values that take a number through every truth value of comparisons with ``constants``.

    The constants themselves, a point between each pair, one beyond each end (unless a bound
    stops it), and the bounds; for whole numbers, the neighbours instead of midpoints.
    """
    points = sorted({float(value) for value in constants} | _present(minimum, maximum))
    points = [p for p in points if _within(p, minimum, maximum)]
    if not points:
        return (minimum if minimum is not None else 0.0,)
    candidates = set(points)
    if integer:
        for point in points:
            candidates.update({math.floor(point) - 1.0, float(math.floor(point))})
            candidates.update({float(math.ceil(point)), math.ceil(point) + 1.0})
    else:
        for low, high in itertools.pairwise(points):
            candidates.add((low + high) / 2)
        candidates.update({points[0] - 1.0, points[-1] + 1.0})
    return tuple(sorted(c for c in candidates if _within(c, minimum, maximum)))


def _present(*values: float | None) -> set[float]:
    return {float(value) for value in values if value is not None}


def _within(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def candidate_values(
    symbol: Symbol, constants: Iterable[Any], *, may_be_unknown: bool, integer: bool = False
) -> tuple[Any, ...]:
    """The values worth trying for one name: its whole domain for choices and booleans, the
    telling points for numbers and durations, the compared texts plus one other for text; and
    ``None`` (unknown) when the name may have no value yet."""
    values: tuple[Any, ...]
    if symbol.type is ValueType.choice:
        values = symbol.values
    elif symbol.type is ValueType.boolean:
        values = (True, False)
    elif symbol.type is ValueType.text:
        values = (*sorted(str(c) for c in constants), OTHER_TEXT)
    else:
        numbers = [float(c) for c in constants if isinstance(c, int | float)]
        values = number_candidates(numbers, symbol.minimum, symbol.maximum, integer=integer)
    return (*values, None) if may_be_unknown else values


def enumerate_learners(
    domains: Mapping[str, Sequence[Any]], cap: int = MAX_COMBINATIONS, seed: int = 0
) -> tuple[list[dict[str, Any]], bool]:
    """Every combination of the domains (``True``), or a seeded sample of ``cap`` (``False``)."""
    names = list(domains)
    size = math.prod(len(domains[name]) for name in names)
    if size <= cap:
        return [
            dict(zip(names, combination, strict=True))
            for combination in itertools.product(*(domains[name] for name in names))
        ], True
    generator = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return [{name: generator.choice(domains[name]) for name in names} for _ in range(cap)], False


def describe_learner(values: Mapping[str, Any], symbols: Mapping[str, Symbol]) -> str:
    """An example learner as a designer reads it: "prior_programming=some, diagnostic.score=0.6"."""
    parts = []
    for name, value in values.items():
        symbol = symbols.get(name)
        if value is None:
            shown = "unknown"
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        elif symbol is not None and symbol.type is ValueType.duration:
            shown = format_duration(float(value))
        elif isinstance(value, float):
            shown = f"{value:.4g}"
        else:
            shown = str(value)
        parts.append(f"{name}={shown}")
    return ", ".join(parts)


# --- what learners have done at a point of the route ----------------------------------------------


def watched_activities(compiled: CompiledDesign) -> frozenset[str]:
    """Activities whose completion matters to some check: read by a condition, reviewed, or
    asking attributes."""
    design = compiled.design
    watched: set[str] = set()
    for condition in compiled.conditions.values():
        for name in condition.reads:
            if name.startswith("since("):
                watched.add(name[len("since(") : -1])
            elif name.partition(".")[0] in design.activities:
                watched.add(name.partition(".")[0])
            elif name.startswith("group."):
                watched.add(split_marker(name.removeprefix("group.")))
    for _, step in iter_steps(design.route, ("route",)):
        if not isinstance(step, str):
            watched.update(construct_of(step).watches(step))
    watched.update(a for a, activity in design.activities.items() if isinstance(activity, Intake))
    return frozenset(watched)


@dataclass
class Linter:
    compiled: CompiledDesign
    problems: list[Problem] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)
    on_route: set[str] = field(default_factory=set)
    dead_cases: dict[str, str] = field(default_factory=dict)  # activity -> why its case is dead
    askers: dict[str, list[str]] = field(default_factory=dict)  # attribute -> intakes asking it

    def __post_init__(self) -> None:
        for activity_id, activity in self.compiled.design.activities.items():
            if isinstance(activity, Intake):
                for attribute in activity.ask:
                    self.askers.setdefault(attribute, []).append(activity_id)

    # reporting

    def report(
        self,
        path: Path,
        severity: str,
        code: str,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
    ) -> None:
        source = self.compiled.source
        position = source.locate(path, key=key) if source is not None else None
        file = source.file if source is not None else "<design>"
        line, column = (position.line, position.column) if position else (0, 0)
        self.problems.append(Problem(message, file, line, column, hint, severity, code))

    # names a condition reads, and what they can be at a point of the route

    def domain(self, name: str, constants: set[Any], progress: Progress) -> tuple[Any, ...]:
        design = self.compiled.design
        symbol = self.compiled.symbols[name]
        if name.startswith("since("):
            activity = name[len("since(") : -1]
            if activity not in progress.may:
                return (None,)
            return candidate_values(symbol, constants, may_be_unknown=activity not in progress.must)
        if "." in name:
            prefix, _, suffix = name.partition(".")
            if prefix == "group" and prefix not in design.activities:
                # The engine assigns the group when the learner reaches the split.
                marker = split_marker(suffix)
                if marker not in progress.may:
                    return (None,)
                return candidate_values(
                    symbol, constants, may_be_unknown=marker not in progress.must
                )
            if prefix in {"mastery", "mastered"} and prefix not in design.activities:
                return candidate_values(symbol, constants, may_be_unknown=False)
            activity = prefix
            done_by_all, done_by_some = activity in progress.must, activity in progress.may
            if suffix == "score":
                if not done_by_some or not isinstance(design.activities[activity], Check):
                    return (None,)
                return candidate_values(symbol, constants, may_be_unknown=not done_by_all)
            if suffix == "attempts":
                if not done_by_some:
                    return (0.0,)
                values = candidate_values(symbol, constants, may_be_unknown=False, integer=True)
                return values if not done_by_all else tuple(v for v in values if v >= 1) or (1.0,)
            if suffix == "completed":
                return (True,) if done_by_all else (True, False) if done_by_some else (False,)
            if suffix == "passed":
                return (True, False) if done_by_some else (False,)
        attribute = design.attributes.get(name)
        # Unknown until a source gives it: a default, or an intake every learner here has done.
        unknown = (
            attribute is not None
            and attribute.default is None
            and not any(asker in progress.must for asker in self.askers.get(name, ()))
        )
        return candidate_values(symbol, constants, may_be_unknown=unknown)

    def learners(
        self, conditions: Sequence[Condition], progress: Progress
    ) -> tuple[list[dict[str, Any]], bool]:
        constants = constants_by_name(condition.tree for condition in conditions)
        names = dict.fromkeys(name for condition in conditions for name in condition.reads)
        domains = {name: self.domain(name, constants.get(name, set()), progress) for name in names}
        return enumerate_learners(domains)

    def check_reads(self, condition: Condition, path: Path, progress: Progress) -> None:
        design = self.compiled.design
        for name in condition.reads:
            activity = name[len("since(") : -1] if name.startswith("since(") else ""
            if "." in name:
                prefix, _, suffix = name.partition(".")
                if prefix in design.activities and suffix in {"score", "passed"}:
                    activity = prefix
                    if suffix == "score" and not isinstance(design.activities[prefix], Check):
                        self.report(
                            path,
                            WARNING,
                            "no-score",
                            f"'{name}' is always unknown: '{prefix}' is "
                            f"{article(design.activities[prefix].kind)}, and only checks have a score",
                            f"read a check's score, or use '{prefix}.completed'",
                        )
                        continue
            if activity and activity not in progress.may:
                self.report(
                    path,
                    WARNING,
                    "read-before-done",
                    f"the condition reads '{name}' before any learner can have done '{activity}'",
                    f"move '{activity}' before this step on the route",
                )

    def check_condition_alone(
        self, condition: Condition, path: Path, progress: Progress, *, last_case: bool = False
    ) -> bool | None:
        """Warn when a condition holds for every learner or for none; return which (or None)."""
        learners, exhaustive = self.learners([condition], progress)
        if not exhaustive:
            return None
        results = {condition.evaluate(learner) for learner in learners}
        if results == {True}:
            hint = (
                "write 'otherwise: true' if every remaining learner should take this case"
                if last_case
                else "check the values it compares with"
            )
            self.report(
                path,
                WARNING,
                "condition-always-true",
                f"the condition '{condition.source}' holds for every learner here",
                hint,
            )
            return True
        if results == {False}:
            self.report(
                path,
                WARNING,
                "condition-never-true",
                f"the condition '{condition.source}' holds for no learner here",
                "check the values it compares with, and that what it reads is done before",
            )
            return False
        return None

    # the route walk

    def walk(self, steps: Sequence[Step], path: Path, progress: Progress, live: bool) -> Progress:
        for index, step in enumerate(steps):
            progress = self.step(step, (*path, index), progress, live)
        return progress

    def mark(self, activity: str, live: bool, why_dead: str = "") -> None:
        self.on_route.add(activity)
        if live:
            self.reached.add(activity)
        elif why_dead:
            self.dead_cases.setdefault(activity, why_dead)

    def step(self, step: Step, path: Path, progress: Progress, live: bool) -> Progress:
        if isinstance(step, str):
            self.mark(step, live)
            return progress.having_done(step)
        return construct_of(step).lint(self, step, path, progress, live)

    def walk_dead(
        self, steps: Sequence[Step], path: Path, progress: Progress, why: str
    ) -> Progress:
        for _, step in iter_steps(tuple(steps), path):
            for activity in (
                [step] if isinstance(step, str) else construct_of(step).activities(step)
            ):
                self.mark(activity, False, why)
        return self.walk(steps, path, progress, live=False)

    def describe(self, learner: Mapping[str, Any]) -> str:
        return describe_learner(learner, self.compiled.symbols)

    def line(self, path: Path) -> int:
        source = self.compiled.source
        position = source.locate(path) if source is not None else None
        return position.line if position is not None else 0

    # whole-design checks

    def can_skip(self, steps: Sequence[Step], progress: Progress) -> bool:
        """Whether some learner can get through ``steps`` without doing any activity."""
        for step in steps:
            if isinstance(step, str):
                return False
            if not construct_of(step).can_skip(self, step, progress):
                return False
        return True

    def completion(self, finished: Progress) -> None:
        design = self.compiled.design
        completion = design.completion
        move_on = completion.move_on
        passed_on_entry: dict[str, Any] | None = None
        if completion.passed_when is not None:
            condition = self.compiled.conditions[completion.passed_when]
            path: Path = ("completion", "passed_when")
            self.check_reads(condition, path, finished)
            entry_learners, _ = self.learners([condition], Progress())
            entry_learners = [self._at_entry(learner) for learner in entry_learners]
            passed_on_entry = next(
                (learner for learner in entry_learners if condition.evaluate(learner)), None
            )
            end_learners, exhaustive = self.learners([condition], finished)
            if exhaustive and not any(condition.evaluate(learner) for learner in end_learners):
                self.report(
                    path,
                    ERROR,
                    "never-passed",
                    f"no learner can ever pass the design: '{condition.source}' never holds at "
                    "the end of the route",
                    "check the activity it reads is on the route and the score it needs is "
                    "reachable",
                )
        elif move_on is not DesignMoveOn.completed and move_on is not DesignMoveOn.mastery:
            # Without passed_when nobody passes: "passed" and "completed-and-passed" can then
            # never be met; "completed-or-passed" falls back to completion alone.
            never = move_on in {DesignMoveOn.passed, DesignMoveOn.completed_and_passed}
            self.report(
                ("completion", "move_on"),
                ERROR if never else WARNING,
                "never-passed",
                f"move_on '{move_on.value}' needs 'passed_when' to say when the design is passed"
                + (": no learner can meet it" if never else ""),
                "add e.g. 'passed_when: project.score >= 0.6'",
            )
        completed_on_entry = self.can_skip(design.route, Progress())
        mastered_on_entry = all(skill.prior >= skill.mastery for skill in design.skills.values())
        satisfied = {
            DesignMoveOn.completed: completed_on_entry,
            DesignMoveOn.passed: passed_on_entry is not None,
            DesignMoveOn.completed_and_passed: completed_on_entry and passed_on_entry is not None,
            DesignMoveOn.completed_or_passed: completed_on_entry or passed_on_entry is not None,
            DesignMoveOn.mastery: mastered_on_entry,
        }[move_on]
        if not satisfied:
            return
        reasons = []
        if completed_on_entry and move_on is not DesignMoveOn.passed:
            reasons.append("every step of the route can be skipped")
        if passed_on_entry is not None and move_on is not DesignMoveOn.completed:
            example = describe_learner(
                {key: passed_on_entry[key] for key in passed_on_entry}, self.compiled.symbols
            )
            reasons.append(f"'passed_when' already holds for a learner with {example}")
        if move_on is DesignMoveOn.mastery:
            reasons.append(
                "there are no skills"
                if not design.skills
                else "every skill's prior is at or above its mastery threshold"
            )
        self.report(
            ("completion",),
            ERROR,
            "satisfied-on-entry",
            "the design counts as done before the learner does anything: " + "; ".join(reasons),
            "make the completion depend on an activity learners must do (e.g. the project)",
            key=True,
        )

    def _at_entry(self, learner: dict[str, Any]) -> dict[str, Any]:
        """A learner who has done nothing: mastery at each skill's prior."""
        skills = self.compiled.design.skills
        entry = dict(learner)
        for name in learner:
            kind, _, skill = name.partition(".")
            if kind == "mastery" and skill in skills:
                entry[name] = skills[skill].prior
            elif kind == "mastered" and skill in skills:
                entry[name] = skills[skill].prior >= skills[skill].mastery
        return entry

    def declarations(self) -> None:
        design = self.compiled.design
        read = {name for condition in self.compiled.conditions.values() for name in condition.reads}
        asked = {
            attribute
            for activity in design.activities.values()
            if isinstance(activity, Intake)
            for attribute in activity.ask
        }
        for name in design.attributes:
            if name not in read and name not in asked:
                self.report(
                    ("attributes", name),
                    WARNING,
                    "unused-attribute",
                    f"attribute '{name}' is never used: no condition reads it and no intake "
                    "asks it",
                    "remove it, or use it in a branch",
                    key=True,
                )
        for name, declaration in design.attributes.items():
            self.attribute_values(name, declaration)
        evidence = {
            question.skill
            for activity in design.activities.values()
            if isinstance(activity, Check)
            for question in activity.questions
            if question.skill is not None
        }
        for skill in design.skills:
            is_read = f"mastery.{skill}" in read or f"mastered.{skill}" in read
            if skill not in evidence:
                uses = " but conditions read it" if is_read else ""
                self.report(
                    ("skills", skill),
                    WARNING,
                    "unused-skill",
                    f"no question gives evidence for skill '{skill}'{uses}: its mastery never "
                    "changes",
                    f"add 'skill: {skill}' to the questions that test it, or remove the skill",
                    key=True,
                )
        for activity_id, activity in design.activities.items():
            if not isinstance(activity, Intake):
                continue
            for index, attribute in enumerate(activity.ask):
                declared = design.attributes.get(attribute)
                if declared is not None and AttributeSource.intake not in declared.sources:
                    self.report(
                        ("activities", activity_id, "ask", index),
                        WARNING,
                        "intake-source",
                        f"'{activity_id}' asks '{attribute}', whose sources do not include intake",
                        f"add 'intake' to the sources of '{attribute}', or do not ask it",
                    )
        if design.grade is not None and design.grade.endswith(".score"):
            graded = design.grade.removesuffix(".score")
            kind = design.activities[graded].kind if graded in design.activities else None
            if kind is not None and kind != "check":
                self.report(
                    ("grade",),
                    ERROR,
                    "not-a-check",
                    f"the grade is the score of '{graded}', {article(kind)}: it has no score",
                    "grade a check (e.g. project.score), or use 'progress'",
                )
        for index, migration in enumerate(design.migrations):
            for old, new in migration.activities.items():
                old_activity = design.activities.get(old)
                new_activity = design.activities[new]
                if old_activity is not None and old_activity.kind != new_activity.kind:
                    self.report(
                        ("migrations", index, "activities", old),
                        WARNING,
                        "migration-kind",
                        f"the migration moves learners from '{old}' ({article(old_activity.kind)}) to "
                        f"'{new}' ({article(new_activity.kind)})",
                        "map each activity to one of the same kind, so progress carries over",
                    )

    def attribute_values(self, name: str, attribute: Attribute) -> None:
        """A default that does not fit the attribute's type or domain; labels for no value."""
        default = attribute.default
        path: Path = ("attributes", name, "default")
        if default is not None:
            fits = {
                AttributeType.choice: isinstance(default, str)
                and default in (attribute.values or ()),
                AttributeType.number: isinstance(default, int | float)
                and not isinstance(default, bool)
                and _within(float(default), attribute.minimum, attribute.maximum),
                AttributeType.boolean: isinstance(default, bool),
                AttributeType.text: isinstance(default, str),
            }[attribute.type]
            if not fits:
                expected = {
                    AttributeType.choice: f"one of {', '.join(attribute.values or ())}",
                    AttributeType.number: "a number"
                    + (
                        f" from {attribute.minimum:g} to {attribute.maximum:g}"
                        if attribute.minimum is not None and attribute.maximum is not None
                        else ""
                    ),
                    AttributeType.boolean: "true or false",
                    AttributeType.text: "text",
                }[attribute.type]
                self.report(
                    path,
                    ERROR,
                    "invalid-default",
                    f"the default of '{name}' is {default!r}, but it must be {expected}",
                    "fix the default, or remove it",
                )
        for value in attribute.labels or {}:
            if value not in (attribute.values or ()):
                self.report(
                    ("attributes", name, "labels", value),
                    WARNING,
                    "invalid-default",
                    f"a label is given for '{value}', which is not a value of '{name}'",
                    "label only the values listed in 'values'",
                    key=True,
                )

    def unreachable(self) -> None:
        for activity_id in self.compiled.design.activities:
            if activity_id in self.reached:
                continue
            if activity_id not in self.on_route:
                message = f"activity '{activity_id}' is not on the route: no learner reaches it"
                hint = "add it to the route, or remove it"
            else:
                why = self.dead_cases.get(activity_id, "the steps that name it are never taken")
                message = f"no learner reaches activity '{activity_id}': {why}"
                hint = "fix the conditions that lead to it"
            self.report(
                ("activities", activity_id),
                WARNING,
                "unreachable-activity",
                message,
                hint,
                key=True,
            )


_SEVERITY_ORDER = {ERROR: 0, WARNING: 1}


def lint(compiled: CompiledDesign) -> list[Problem]:
    """The errors and warnings the linter finds, in file order: the first
    ``MAX_LISTED_PROBLEMS`` and a line counting the rest."""
    linter = Linter(compiled)
    start = Progress(watched=watched_activities(compiled))
    finished = linter.walk(compiled.design.route, ("route",), start, live=True)
    linter.completion(finished)
    linter.declarations()
    linter.unreachable()
    unique = list(dict.fromkeys(linter.problems))
    ordered = sorted(unique, key=lambda p: (p.line, p.column, _SEVERITY_ORDER.get(p.severity, 2)))
    # At most MAX_LISTED_PROBLEMS, then one line counting the rest.
    return cap_problems(ordered)
