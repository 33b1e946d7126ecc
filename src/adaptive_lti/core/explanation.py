"""Explanation traces: why the engine decided what it did, for learners and for instructors.

Every decision carries an ``Explanation``: the trace of rules the engine applied on the way
(``TraceEntry``: the rule, where it is in the design, the condition text, its result and every
value it read), the main rule that fired, and two renderings: ``learner_text`` in plain words
("You are on the foundations route because your diagnostic score was 0.17 (below 0.5).") and
``instructor_detail`` with the rule, the condition and each value read.

Conditions are rendered from their parsed tree, naming only the parts that made the result: for a
case that was taken, the parts that held; for a case that was not, the parts that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from adaptive_lti.core.conditions import (
    All,
    Any_,
    Compare,
    Literal,
    Member,
    Name,
    Node,
    Not,
    Truth,
    format_value,
)
from adaptive_lti.core.design import Design

Value = float | str | bool | None


class TraceEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str  # e.g. 'branch case "foundations" of route[2]'
    path: str = ""  # where in the design, e.g. "route[2].branch[1]"
    condition: str | None = None
    result: bool | None = None
    values: dict[str, Value] = {}
    learner: str = ""  # a plain sentence for the learner, or "" when not worth telling them
    detail: str = ""  # one line for the instructor


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    learner_text: str
    instructor_detail: str
    trace: tuple[TraceEntry, ...] = ()


@lru_cache(maxsize=65536)
def path_text(path: tuple[str | int, ...]) -> str:
    """("route", 2, "branch", 1, "then", 0) -> "route[2].branch[1].then[0]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def values_text(values: Mapping[str, Value]) -> str:
    if not values:
        return "nothing"
    return ", ".join(f"{name} = {_instructor_value(name, value)}" for name, value in values.items())


def _instructor_value(name: str, value: Value) -> str:
    if name.startswith("since(") and isinstance(value, float):
        return elapsed_words(value)
    return format_value(value)


def elapsed_words(seconds: float) -> str:
    """A time span as people say it: "40 minutes", "5 hours", "8 days", "3 weeks"."""
    if seconds < 2 * 3600:
        amount, unit = seconds / 60, "minute"
    elif seconds < 2 * 86400:
        amount, unit = seconds / 3600, "hour"
    elif seconds < 21 * 86400:
        amount, unit = seconds / 86400, "day"
    else:
        amount, unit = seconds / 604800, "week"
    shown = f"{amount:.1f}".rstrip("0").rstrip(".")
    return f"{shown} {unit}{'' if shown == '1' else 's'}"


# --- plain words ---------------------------------------------------------------------------------


def lower_title(title: str) -> str:
    """ "Loops check" -> "loops check", but "SQL basics" stays as written."""
    first = title.split(" ", 1)[0]
    if len(first) > 1 and not first[1:].islower():
        return title
    return title[:1].lower() + title[1:]


def subject(design: Design, name: str) -> str:
    """How a name reads in a sentence for the learner: "your diagnostic score"."""
    if name in design.attributes:
        description = design.attributes[name].description
        noun = description if description and len(description) <= 40 else name.replace("_", " ")
        return f"your {noun.rstrip('.')}"
    if name.startswith("since("):
        return f"the time since you completed {_activity_title(design, name[6:-1])}"
    head, _, tail = name.partition(".")
    if head in design.activities:
        title = _activity_title(design, head)
        if tail == "score":
            return f"your {title} score"
        if tail == "attempts":
            return f"your number of attempts at {title}"
        return f"{title} {tail}"
    if head in {"mastery", "mastered"}:
        skill = design.skills.get(tail)
        return f"your mastery of {lower_title(skill.title) if skill and skill.title else tail}"
    if head == "group":
        return f"your group in {tail}"
    return name


def _activity_title(design: Design, activity_id: str) -> str:
    activity = design.activities.get(activity_id)
    return lower_title(activity.title) if activity is not None else activity_id


def _learner_value(design: Design, name: str, value: Value) -> str:
    if value is None:
        return "unknown"
    if name.startswith("since(") and isinstance(value, float):
        return elapsed_words(value)
    if isinstance(value, str):
        return value
    return format_value(value)


def _literal_text(name: str, literal: Literal) -> str:
    if name.startswith("since(") and isinstance(literal.value, float):
        return elapsed_words(literal.value)
    if isinstance(literal.value, str):
        return literal.value
    return format_value(literal.value)


_RELATION = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _holds(node: Node, values: Mapping[str, Value]) -> bool:
    """Evaluate a tree against recorded values (for rendering only; the engine uses closures)."""
    match node:
        case All(operands):
            return all(_holds(operand, values) for operand in operands)
        case Any_(operands):
            return any(_holds(operand, values) for operand in operands)
        case Not(operand):
            return not _holds(operand, values)
        case Truth(subject_name):
            return values.get(subject_name.key) is True
        case Member(subject_name, options):
            value = values.get(subject_name.key)
            return value is not None and value in {option.value for option in options}
        case Compare(left, op, right):
            left_value = values.get(left.key) if isinstance(left, Name) else left.value
            right_value = values.get(right.key) if isinstance(right, Name) else right.value
            if left_value is None or right_value is None:
                return False
            try:
                return {
                    "==": left_value == right_value,
                    "!=": left_value != right_value,
                    "<": left_value < right_value,  # type: ignore[operator]
                    "<=": left_value <= right_value,  # type: ignore[operator]
                    ">": left_value > right_value,  # type: ignore[operator]
                    ">=": left_value >= right_value,  # type: ignore[operator]
                }[op]
            except TypeError:
                return False
    return False


def _phrase(design: Design, node: Node, values: Mapping[str, Value], holds: bool) -> str:
    """One comparison in words, saying why it holds (``holds``) or why it does not."""
    match node:
        case Truth(name):
            if values.get(name.key) is None and name.key in design.attributes:
                return f"{subject(design, name.key)} is not known yet"
            return _truth_phrase(design, name.key, holds)
        case Member(name, options):
            value = values.get(name.key)
            who = subject(design, name.key)
            if value is None:
                return f"{who} is not known yet"
            shown = _learner_value(design, name.key, value)
            if holds:
                return f"{who} is {shown}"
            allowed = ", ".join(_literal_text(name.key, option) for option in options)
            return f"{who} is {shown}, not one of {allowed}"
        case Compare(left, op, right):
            if isinstance(left, Literal) and isinstance(right, Name):
                left, op, right = right, _FLIPPED[op], left
            if not isinstance(left, Name):
                return "a constant comparison"
            who = subject(design, left.key)
            value = values.get(left.key)
            if value is None:
                return f"{who} is not known yet"
            shown = _learner_value(design, left.key, value)
            if isinstance(right, Name):
                other = _learner_value(design, right.key, values.get(right.key))
                verdict = "" if holds else "not "
                return f"{who} is {shown} ({verdict}{op} {subject(design, right.key)}, {other})"
            constant = _literal_text(left.key, right)
            verb = "was" if left.key.endswith((".score", ".attempts")) else "is"
            if left.key.startswith("since("):
                verb = "is"
            if op in _RELATION:
                relation = _RELATION[op] if holds else f"not {_RELATION[op]}"
                return f"{who} {verb} {shown} ({relation} {constant})"
            if (op == "==") == holds:
                return f"{who} {verb} {shown}"
            return f"{who} {verb} {shown}, not {constant}"
    return ""


def _truth_phrase(design: Design, key: str, holds: bool) -> str:
    head, _, tail = key.partition(".")
    if head in design.activities and tail in {"completed", "passed"}:
        title = _activity_title(design, head)
        verb = "completed" if tail == "completed" else "passed"
        return f"you have {verb} {title}" if holds else f"you have not {verb} {title} yet"
    if head == "mastered":
        skill = design.skills.get(tail)
        name = lower_title(skill.title) if skill and skill.title else tail
        return f"you have mastered {name}" if holds else f"you have not mastered {name} yet"
    attribute = design.attributes.get(key)
    if attribute is not None and attribute.question:
        return f'you answered {"yes" if holds else "no"} to "{attribute.question}"'
    return f"{subject(design, key)} is {'yes' if holds else 'no'}"


def reasons(design: Design, node: Node, values: Mapping[str, Value], holds: bool) -> list[str]:
    """The parts of a condition that made it come out as ``holds``, each as a phrase."""
    match node:
        case All(operands):
            if holds:
                return [p for operand in operands for p in reasons(design, operand, values, True)]
            failing = [operand for operand in operands if not _holds(operand, values)]
            return [p for operand in failing[:1] for p in reasons(design, operand, values, False)]
        case Any_(operands):
            if holds:
                passing = [operand for operand in operands if _holds(operand, values)]
                return [p for operand in passing for p in reasons(design, operand, values, True)]
            return [p for operand in operands for p in reasons(design, operand, values, False)]
        case Not(operand):
            return reasons(design, operand, values, not holds)
    return [_phrase(design, node, values, holds)]


def join_phrases(phrases: list[str], word: str = "and") -> str:
    unique = list(dict.fromkeys(phrase for phrase in phrases if phrase))
    if len(unique) <= 1:
        return "".join(unique)
    return ", ".join(unique[:-1]) + f" {word} " + unique[-1]
