"""What a designer reads when a design does not validate: pydantic's errors turned into
sentences that name the place in the designer's terms ("the 2nd case of the branch at
route[3]"), say what was found, and what to write instead (an example of the field, the keys
allowed there, the nearest known key or step kind).

``core/loader.py`` calls ``plain_words`` for each error and puts the line and column in front.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from adaptive_lti.core.constructs import BY_KEY
from adaptive_lti.core.design import DURATION, IDENTIFIER, Design
from adaptive_lti.core.source import Path, SourceMap

# A composite step's YAML key -> its construct (core/constructs/).
STEP_KINDS = BY_KEY


STEP_SHAPES = "a step is an activity id or one of " + ", ".join(STEP_KINDS)


def without_echoes(errors: list[Any]) -> list[Any]:
    """Drop pydantic's "too short" on a list whose items failed: it counts only the valid items,
    so one bad question also says "'questions' needs at least 1 item"."""
    locs = [tuple(error["loc"]) for error in errors]
    return [
        error
        for error, loc in zip(errors, locs, strict=True)
        if error["type"] != "too_short"
        or not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
    ]


def inside_a_step(loc: tuple[Any, ...]) -> bool:
    """Whether a pydantic error location goes into a route step (any depth)."""
    return any(
        element in {"route", "then"} and index + 1 < len(loc) and isinstance(loc[index + 1], int)
        for index, element in enumerate(loc)
    )


def document_path(loc: tuple[Any, ...], data: Any) -> tuple[Path, bool]:
    """A pydantic ``loc`` as a path in the document, skipping union tags; and whether it names
    a mapping key (``[key]``) rather than a value."""
    path: list[str | int] = []
    current = data
    key_error = False
    for element in loc:
        if element == "[key]":
            key_error = True
            continue
        if (isinstance(current, dict) and element in current) or (
            isinstance(current, list) and isinstance(element, int) and element < len(current)
        ):
            path.append(element)
            current = current[element]
        elif isinstance(current, dict) and isinstance(element, str) and _is_field_name(element):
            # A key that is missing or unknown: keep it, the caller points at its parent.
            path.append(element)
            current = None
        # else: a union member's tag ("page", "function-after[...]"): not in the document.
    return tuple(path), key_error


def _is_field_name(element: str) -> bool:
    return not (element[:1].isupper() or "[" in element or element in _ACTIVITY_KINDS)


_ACTIVITY_KINDS = {"page", "check", "intake", "link", "reflection", "constrained-str"}


def describe_path(path: Path) -> str:
    match path:
        case ():
            return "the design"
        case ("activities", str(activity)):
            return f"activity '{activity}'"
        case ("attributes", str(name)):
            return f"attribute '{name}'"
        case ("skills", str(name)):
            return f"skill '{name}'"
        case ("activities", str(activity), "questions", int(index)):
            return f"question {index + 1} of '{activity}'"
        case ("migrations", int(index)):
            return f"migration {index + 1}"
        case (*_, "branch", int(index)):
            return f"case {index + 1} of the branch"
        case (*_, "variants", str(name)):
            return f"variant '{name}'"
        case (*_, int(index)) if "route" in path:
            return f"route step {index + 1}"
        case (*_, str(key)) if "route" in path:
            return f"'{key}'"
    return "'" + ".".join(str(element) for element in path) + "'"


_EXAMPLES = {
    "title": "title: Loops",
    "kind": "kind: page (or check, intake, link, reflection)",
    "type": "type: choice (or number, boolean, text)",
    "questions": "questions: [{id: q1, prompt: ..., choices: [...], answer: ...}]",
    "route": "route: [welcome, diagnostic, project]",
    "activities": "activities: {welcome: {kind: page, title: Welcome, body: Hello}}",
    "design": "design: my-course",
    "id": "id: elective",
    "from": "from: [games, data, web]",
    "check": "check: loops-check",
    "lesson": "lesson: loops-remedial",
    "below": "below: 0.7",
    "max": "max: 2",
    "activity": "activity: loops-review",
    "of": "of: loops-check",
    "after": "after: 7d",
    "variants": "variants: {control: {weight: 1}, pilot: {weight: 1}}",
    "prompt": "prompt: What does this print?",
    "choices": 'choices: ["1", "2"]',
    "answer": 'answer: "2"',
    "ask": "ask: [prior_programming]",
    "url": "url: https://moodle.example.org/mod/page/view.php?id=1",
    "from_version": "from_version: 1",
}


def missing_hint(missing: str) -> str:
    example = _EXAMPLES.get(missing, f"{missing}: ...")
    return f"add '{example}'"


def unknown_key_hint(unknown: str, allowed: list[str]) -> str:
    if not allowed:
        return "remove it"
    close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "allowed here: " + ", ".join(allowed)


def allowed_keys(path: Path, data: Any) -> list[str]:
    model = _model_at(path, data)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _value_at(data: Any, path: Path) -> Any:
    current: Any = data
    for element in path:
        if isinstance(current, dict):
            current = current.get(element)
        elif isinstance(current, list) and isinstance(element, int) and element < len(current):
            current = current[element]
        else:
            return None
    return current


def _model_at(path: Path, data: Any) -> type[BaseModel] | None:
    """The model that describes the mapping at ``path`` (for listing its allowed keys)."""
    annotation: Any = Design
    for depth, element in enumerate(path):
        annotation = _narrow(annotation, _value_at(data, path[:depth]))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {(info.alias or name): info for name, info in annotation.model_fields.items()}
            if element not in fields:
                return None
            annotation = fields[str(element)].annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is tuple:
            annotation = get_args(annotation)[0]
        else:
            return None
    annotation = _narrow(annotation, _value_at(data, path))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _narrow(annotation: Any, value: Any) -> Any:
    """Unwrap ``Annotated`` and pick the union member that fits ``value``."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in {Union, types.UnionType}:
        models = [
            member
            for member in get_args(annotation)
            if isinstance(member, type) and issubclass(member, BaseModel)
        ]
        if not isinstance(value, dict) or not models:
            return annotation
        kind = value.get("kind")
        for model in models:
            field = model.model_fields.get("kind")
            if field is not None and kind in get_args(field.annotation):
                return model
        return max(models, key=lambda model: len(set(model.model_fields) & set(value)))
    return annotation


def describe_value(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping (key: value lines)"
    return "an unreadable value"


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list",
    "tuple_type": "a list",
}


_BOUNDS = {
    "greater_than": "more than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}


def _subject(path: Path) -> str:
    """How to name the value at ``path`` in a message: "'pass_mark'", "item 2 of 'values'"."""
    if not path:
        return "the design"
    last = path[-1]
    if isinstance(last, int):
        if "route" in path and (len(path) == 2 or path[-2] == "then"):
            return f"route step {last + 1}"
        parent = next((element for element in reversed(path) if isinstance(element, str)), "")
        return f"item {last + 1} of '{parent}'"
    return f"'{last}'"


def plain_words(
    error: dict[str, Any], path: Path, key_error: bool, source: SourceMap
) -> tuple[str, str, str]:
    """(message, hint, code) for a validation error, in words a course designer reads."""
    kind: str = error["type"]
    value = error.get("input")
    context: dict[str, Any] = error.get("ctx") or {}
    subject = _subject(path)
    if kind == "step_shape":
        close = ""
        if isinstance(value, dict):
            for key in value:
                match = difflib.get_close_matches(str(key), list(STEP_KINDS), n=1, cutoff=0.6)
                if match and key not in STEP_KINDS:
                    close = f"did you mean '{match[0]}' instead of '{key}'?"
                    break
            found = [key for key in value if key in STEP_KINDS]
            if len(found) > 1:
                return (
                    f"{subject} has both {' and '.join(found)}: {STEP_SHAPES}",
                    "put each construct in its own list item ('- ')",
                    "invalid-step",
                )
        return (
            f"{subject} is {describe_value(value)}: {STEP_SHAPES}",
            close or "e.g. '- loops-lesson' or '- branch: [...]'",
            "invalid-step",
        )
    if kind in _EXPECTED:
        hint = ""
        position = source.locate(path)
        plain = position is not None and position.style == ""
        if kind == "string_type" and isinstance(value, bool) and plain:
            hint = "YAML reads yes/no/on/off/true/false as true or false; put it in quotes"
        elif kind == "string_type" and isinstance(value, int | float):
            hint = "put it in quotes if you mean the text"
        elif kind in {"dict_type", "model_type", "model_attributes_type"} and isinstance(
            value, str
        ):
            hint = "write its keys on the lines below it, indented"
        return (
            f"{subject} should be {_EXPECTED[kind]}, not {describe_value(value)}",
            hint,
            "wrong-type",
        )
    if kind == "union_tag_invalid":
        tags = [tag.strip(" '") for tag in str(context.get("expected_tags", "")).split(",")]
        tag_match = difflib.get_close_matches(str(context.get("tag")), tags, n=1, cutoff=0.5)
        hint = f"did you mean '{tag_match[0]}'?" if tag_match else "use one of: " + ", ".join(tags)
        return f"unknown kind '{context.get('tag')}' in {describe_path(path)}", hint, "invalid"
    if kind == "union_tag_not_found":
        return (
            f"{describe_path(path)} has no 'kind'",
            "add 'kind: page' (or check, intake, link, reflection)",
            "missing-key",
        )
    if kind == "enum" or kind == "literal_error":
        expected = str(context.get("expected", ""))
        options = [option.strip(" '") for option in expected.replace(" or ", ",").split(",")]
        options = [option for option in options if option]
        option_match = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        hint = (
            f"did you mean '{option_match[0]}'?"
            if option_match
            else "use one of: " + ", ".join(options)
        )
        return f"{subject} cannot be {describe_value(value)}", hint, "invalid"
    if kind == "string_pattern_mismatch":
        pattern = context.get("pattern")
        if pattern == IDENTIFIER:
            what = "a key" if key_error else subject
            return (
                f"the key '{path[-1]}' is not a valid id"
                if key_error
                else f"{what} is '{value}', which is not a valid id",
                "ids use lower-case letters, digits, '-' and '_', and start with a letter "
                "(e.g. loops-check)",
                "invalid-id",
            )
        if pattern == DURATION:
            return (
                f"{subject} is '{value}', which is not a duration",
                "write a number and a unit: 30m, 12h, 7d or 2w",
                "invalid",
            )
        if pattern == r"^https?://":
            return (
                f"{subject} is '{value}', which is not a web address",
                "start it with https://",
                "invalid",
            )
        return (
            f"{subject} is '{value}', which has the wrong form",
            f"it must match {pattern}",
            "invalid",
        )
    if kind in _BOUNDS:
        bound = next(iter(context.values()), "")
        return (
            f"{subject} must be {_BOUNDS[kind]} {bound}, not {describe_value(value)}",
            "",
            "out-of-range",
        )
    if kind == "too_short":
        minimum = context.get("min_length", 1)
        return (
            f"{subject} needs at least {minimum} item{'s' if minimum != 1 else ''}",
            "",
            "too-short",
        )
    if kind == "too_long" or kind == "string_too_long":
        limit = context.get("max_length", "")
        return f"{subject} is too long (at most {limit})", "", "too-long"
    if kind == "string_too_short":
        return f"{subject} is empty", "write something here", "too-short"
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return message, "", "invalid"
    if kind == "assertion_error":
        return str(error["msg"]).removeprefix("Assertion failed, "), "", "invalid"
    return f"{subject}: {error['msg']}", "", "invalid"
