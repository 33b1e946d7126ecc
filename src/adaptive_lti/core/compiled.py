"""A design ready to run: the validated ``Design`` plus its compiled conditions and indexes.

``compile_design`` is the last step of loading (``core/loader.py``): it builds the table of names
conditions may read (``design_symbols``), compiles every condition once, and checks every id the
route names. Problems are returned as ``(path, message, hint)`` so the loader can point at the
line and column of the offending YAML node; the engine only ever sees a ``CompiledDesign``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

from adaptive_lti.core.conditions import Condition, ConditionError, Symbol, ValueType
from adaptive_lti.core.conditions import compile_condition as compile_text
from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.design import (
    Activity,
    AttributeType,
    Branch,
    Check,
    Design,
    Intake,
    Step,
)
from adaptive_lti.core.source import SourceMap

# A location inside the design document, as keys and list indexes: ("route", 2, "branch", 0, "when").
Path = tuple[str | int, ...]

_ATTRIBUTE_TYPES = {
    AttributeType.choice: ValueType.choice,
    AttributeType.number: ValueType.number,
    AttributeType.boolean: ValueType.boolean,
    AttributeType.text: ValueType.text,
}


@dataclass(frozen=True)
class CompileProblem:
    path: Path
    message: str
    hint: str = ""
    column_in_text: int = 0  # for condition errors: the column inside the condition text


def iter_steps(steps: tuple[Step, ...], path: Path) -> Iterator[tuple[Path, Step]]:
    """Every step of a route, depth first, with its path in the document."""
    for index, step in enumerate(steps):
        here = (*path, index)
        yield here, step
        if not isinstance(step, str):
            for container, nested in construct_of(step).children(step, here):
                yield from iter_steps(nested, container)


_SCORE = Symbol(ValueType.number, minimum=0.0, maximum=1.0)
_ATTEMPTS = Symbol(ValueType.number, minimum=0.0)
_FLAG = Symbol(ValueType.boolean)
_SINCE = Symbol(ValueType.duration, minimum=0.0)


def design_symbols(design: Design) -> dict[str, Symbol]:
    """Every name a condition of this design may read, with its type."""
    symbols: dict[str, Symbol] = {}
    for name, attribute in design.attributes.items():
        symbols[name] = Symbol(
            _ATTRIBUTE_TYPES[attribute.type],
            attribute.values or (),
            attribute.minimum,
            attribute.maximum,
            attribute.description,
        )
    # Symbols are immutable: every activity shares the same five (a 1,000-activity design would
    # otherwise build 5,000 equal objects at each load).
    for activity_id in design.activities:
        symbols[f"{activity_id}.score"] = _SCORE
        symbols[f"{activity_id}.attempts"] = _ATTEMPTS
        symbols[f"{activity_id}.completed"] = _FLAG
        symbols[f"{activity_id}.passed"] = _FLAG
        symbols[f"since({activity_id})"] = _SINCE
    for skill_id in design.skills:
        symbols[f"mastery.{skill_id}"] = Symbol(ValueType.number, minimum=0.0, maximum=1.0)
        symbols[f"mastered.{skill_id}"] = Symbol(ValueType.boolean)
    for _, step in iter_steps(design.route, ("route",)):
        if not isinstance(step, str):
            symbols.update(construct_of(step).symbols(step))
    return symbols


@dataclass(frozen=True)
class CompiledDesign:
    design: Design
    symbols: dict[str, Symbol]
    # Every condition of the design, compiled once, keyed by its text.
    conditions: dict[str, Condition]
    # Where each condition text is written (for the linter's messages).
    condition_paths: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    # Where each part was written, when the design was read from YAML (``core/loader.py``).
    source: SourceMap | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.design.design

    @property
    def version(self) -> int:
        return self.design.version

    def activity(self, activity_id: str) -> Activity:
        return self.design.activities[activity_id]

    def condition(self, text: str) -> Condition:
        return self.conditions[text]


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return (
        f"did you mean '{close[0]}'?"
        if close
        else f"declare it under 'activities' ({len(known)} declared)"
    )


def _step_references(step: Step) -> list[tuple[str, str]]:
    """(field, activity id) pairs a step refers to."""
    if isinstance(step, str):
        return [("", step)]
    return construct_of(step).references(step)


def compile_design(design: Design) -> tuple[CompiledDesign | None, list[CompileProblem]]:
    """Compile every condition and check every reference; return the design or the problems."""
    problems: list[CompileProblem] = []
    symbols = design_symbols(design)
    activity_ids = list(design.activities)
    conditions: dict[str, Condition] = {}
    condition_paths: dict[str, list[Path]] = {}

    def add_condition(text: str, path: Path) -> None:
        condition_paths.setdefault(text, []).append(path)
        if text in conditions:
            return
        try:
            conditions[text] = compile_text(text, symbols)
        except ConditionError as error:
            problems.append(CompileProblem(path, error.message, error.hint, error.column))

    for activity_id, activity in design.activities.items():
        if isinstance(activity, Intake):
            for index, attribute in enumerate(activity.ask):
                if attribute not in design.attributes:
                    problems.append(
                        CompileProblem(
                            ("activities", activity_id, "ask", index),
                            f"unknown attribute '{attribute}'",
                            _suggest(attribute, list(design.attributes)).replace(
                                "'activities'", "'attributes'"
                            ),
                        )
                    )
        if isinstance(activity, Check):
            for index, question in enumerate(activity.questions):
                if question.skill is not None and question.skill not in design.skills:
                    problems.append(
                        CompileProblem(
                            ("activities", activity_id, "questions", index, "skill"),
                            f"unknown skill '{question.skill}'",
                            _suggest(question.skill, list(design.skills)).replace(
                                "'activities'", "'skills'"
                            ),
                        )
                    )

    for path, step in iter_steps(design.route, ("route",)):
        for field_name, activity_id in _step_references(step):
            if activity_id not in design.activities:
                where = path if not field_name else (*path, construct_of(step).key, field_name)
                problems.append(
                    CompileProblem(
                        where,
                        f"unknown activity '{activity_id}'",
                        _suggest(activity_id, activity_ids),
                    )
                )
        if isinstance(step, Branch):
            for case_index, case in enumerate(step.branch):
                if case.when is not None:
                    add_condition(case.when, (*path, "branch", case_index, "when"))

    if design.completion.passed_when is not None:
        add_condition(design.completion.passed_when, ("completion", "passed_when"))
    if design.grade is not None and design.grade not in {"mastery", "progress"}:
        grade_symbol = symbols.get(design.grade)
        if grade_symbol is None or grade_symbol.type is not ValueType.number:
            problems.append(
                CompileProblem(
                    ("grade",),
                    f"the grade '{design.grade}' is not a score",
                    "use '<activity>.score' (e.g. project.score), 'mastery' or 'progress'",
                )
            )
    for index, migration in enumerate(design.migrations):
        for new_id in migration.activities.values():
            if new_id not in design.activities:
                problems.append(
                    CompileProblem(
                        ("migrations", index, "activities"),
                        f"unknown activity '{new_id}' in the migration from version "
                        f"{migration.from_version}",
                        _suggest(new_id, activity_ids),
                    )
                )
    if problems:
        return None, problems
    compiled = CompiledDesign(
        design,
        symbols,
        conditions,
        {text: tuple(paths) for text, paths in condition_paths.items()},
    )
    return compiled, []
