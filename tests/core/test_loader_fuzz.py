"""Fuzzing the loader: random and mutated input never raises anything but DesignError.

When a mutated design still loads, the linter and the graph must handle it too.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_lti.core.errors import DesignError, Problem
from adaptive_lti.core.graph import render
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from tests.core.design_texts import VALID

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
YAML_CHARACTERS = st.sampled_from([*":-[]{}\"'&*!|>#%@`,?\t\n\r ~\ufeff\x00\x85", "a", "1"])


def check_input(text: str | bytes) -> None:
    """Load, and when that works, lint and draw; only DesignError may escape the loader."""
    try:
        compiled = load_design(text, "fuzz.yaml")
    except DesignError as error:
        assert error.problems
        for problem in error.problems:
            assert isinstance(problem, Problem)
            assert problem.message
            assert problem.line >= 0 and problem.column >= 0
            assert problem.severity == "error"
        return
    for problem in lint(compiled):
        assert problem.message and problem.severity in {"error", "warning"}
    for output_format in ("mermaid", "dot", "svg"):
        assert render(compiled.design, output_format)


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    check_input(text)


@FUZZ
@given(st.text(st.characters() | st.characters(categories=["Cs"]), max_size=200))
def test_random_text_with_lone_surrogates(text: str) -> None:
    check_input(text)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check_input(data)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["welcome", "project", "page", "check", "diagnostic.score < 0.5", "7d", ""]),
    st.text(max_size=12),
)
keys = st.sampled_from(
    [
        "design",
        "title",
        "activities",
        "route",
        "kind",
        "branch",
        "when",
        "then",
        "otherwise",
        "remediate",
        "choose",
        "from",
        "pick",
        "split",
        "variants",
        "review",
        "questions",
        "attributes",
        "type",
        "values",
    ]
) | st.text(max_size=8)
structures = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(st.dictionaries(keys, structures, max_size=6))
def test_random_yaml_structures(document: dict[str, Any]) -> None:
    check_input(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.data())
def test_character_mutations_of_a_valid_design(data: st.DataObject) -> None:
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            text = text[:position] + data.draw(YAML_CHARACTERS) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 20)) :]
        else:
            text = text[:position] + data.draw(YAML_CHARACTERS) + text[position + 1 :]
    check_input(text)


@FUZZ
@given(st.data())
def test_line_mutations_of_a_valid_design(data: st.DataObject) -> None:
    lines = VALID.split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["duplicate", "delete", "indent", "dedent", "swap"]))
        if action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "delete" and len(lines) > 1:
            del lines[index]
        elif action == "indent":
            lines[index] = "  " + lines[index]
        elif action == "dedent":
            lines[index] = lines[index][2:]
        else:
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
    check_input("\n".join(lines))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


@FUZZ
@given(st.data())
def test_value_mutations_of_a_valid_design(data: st.DataObject) -> None:
    document = yaml.safe_load(VALID)
    paths = [path for path in _paths(document) if path]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent: Any = document
        try:
            for element in path[:-1]:
                parent = parent[element]
            action = data.draw(st.sampled_from(["replace", "delete"]))
            if action == "replace":
                parent[path[-1]] = data.draw(structures)
            elif isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation removed or replaced this path (or its parent)
    check_input(yaml.safe_dump(document, allow_unicode=True))
