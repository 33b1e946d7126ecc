"""Conditions: readable expressions, parsed once (lark, never ``eval``), type-checked, compiled.

A teacher writes ``prior_programming == "none" or diagnostic.score < 0.5``. At load time the text
is parsed into a small tree (``Node``), checked against the names the design declares
(``Symbol``), and compiled into Python closures, so that evaluating it during a decision costs
about a microsecond (see ../shared reference: cel-python 400 µs, closures 0.2 µs).

Grammar, loosest first: ``or``, ``and``, ``not``, comparisons (``== != < <= > >=``, ``in [..]``),
then operands: names (``goal``, ``diagnostic.score``, ``mastery.loops``, ``group.pilot``),
``since(<activity>)``, numbers, ``"strings"``, durations (``30m 12h 7d 2w``), ``true``/``false``.
A comparison that reads an unknown value (none) is false, so ``not (goal == "x")`` holds while
the goal is unknown.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from lark import Lark, LarkError, Token, Transformer, UnexpectedInput, v_args

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | atom
?atom: operand COMPARATOR operand -> comparison
     | operand _IN "[" literal ("," literal)* "]" -> membership
     | operand -> truth
     | "(" or_expr ")"
?operand: name | literal | since
since: "since" "(" NAME ")"
name: NAME ("." NAME)?
?literal: DURATION -> duration
        | NUMBER -> number
        | STRING -> string
        | _TRUE -> true
        | _FALSE -> false
_OR.2: /or\b/
_AND.2: /and\b/
_NOT.2: /not\b/
_IN.2: /in\b/
_TRUE.2: /true\b/
_FALSE.2: /false\b/
COMPARATOR: "==" | "!=" | "<=" | ">=" | "<" | ">"
DURATION.3: /[0-9]+(\.[0-9]+)?[mhdw]\b/
NUMBER: /-?[0-9]+(\.[0-9]+)?/
STRING: /"[^"\n]*"/ | /'[^'\n]*'/
NAME: /(?!(and|or|not|in|true|false|since)(?![a-z0-9_\-]))[a-z_][a-z0-9_\-]*/
%import common.WS
%ignore WS
"""

SECONDS_PER_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class ValueType(StrEnum):
    number = "number"
    boolean = "boolean"
    text = "text"
    choice = "choice"
    duration = "duration"


@dataclass(frozen=True)
class Symbol:
    """A name a condition may read, with its type (and, for choices, its domain)."""

    type: ValueType
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


class ConditionError(Exception):
    """A condition cannot be parsed or does not type-check. ``column`` is 1-based in the text."""

    def __init__(self, message: str, column: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint


# --- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: float | str | bool
    type: ValueType
    text: str


@dataclass(frozen=True)
class Name:
    """A name to look up: "goal", "diagnostic.score", "since(loops-check)"."""

    key: str
    column: int


@dataclass(frozen=True)
class Compare:
    left: Name | Literal
    op: str
    right: Name | Literal


@dataclass(frozen=True)
class Member:
    subject: Name
    options: tuple[Literal, ...]


@dataclass(frozen=True)
class Truth:
    subject: Name


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class All:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    operands: tuple[Node, ...]


Node = Compare | Member | Truth | Not | All | Any_


@v_args(inline=True)
class _ToTree(Transformer[Token, Node]):
    def or_expr(self, *operands: Node) -> Node:
        return Any_(tuple(operands))

    def and_expr(self, *operands: Node) -> Node:
        return All(tuple(operands))

    def negation(self, operand: Node) -> Node:
        return Not(operand)

    def comparison(self, left: Name | Literal, op: Token, right: Name | Literal) -> Node:
        return Compare(left, str(op), right)

    def membership(self, subject: Name | Literal, *options: Literal) -> Node:
        if not isinstance(subject, Name):
            raise ConditionError('\'in\' needs a name on its left, e.g. goal in ["a", "b"]')
        return Member(subject, tuple(options))

    def truth(self, subject: Name | Literal) -> Node:
        if isinstance(subject, Literal):
            raise ConditionError(
                f"{subject.text} alone is not a condition",
                hint="compare it with a name, e.g. diagnostic.score >= 0.5",
            )
        return Truth(subject)

    def name(self, first: Token, second: Token | None = None) -> Name:
        key = f"{first}.{second}" if second is not None else str(first)
        return Name(key, first.column or 0)

    def since(self, activity: Token) -> Name:
        return Name(f"since({activity})", (activity.column or 5) - 6)

    def duration(self, token: Token) -> Literal:
        text = str(token)
        return Literal(duration_seconds(text), ValueType.duration, text)

    def number(self, token: Token) -> Literal:
        return Literal(float(token), ValueType.number, str(token))

    def string(self, token: Token) -> Literal:
        return Literal(str(token)[1:-1], ValueType.text, str(token))

    def true(self) -> Literal:
        return Literal(True, ValueType.boolean, "true")

    def false(self) -> Literal:
        return Literal(False, ValueType.boolean, "false")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


def parse(text: str) -> Node:
    """Parse a condition into its tree, or raise ``ConditionError`` with the column."""
    if len(text) > 2000:
        raise ConditionError("the condition is longer than 2000 characters", hint="split it")
    try:
        tree = _parser().parse(text)
        node = _ToTree().transform(tree)
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        if isinstance(token, Token) and token.type == "$END":
            # Lark reports the end of input at the last token read: point past the text instead.
            raise ConditionError(
                "the condition ends too early",
                len(text.rstrip()) + 1,
                "complete it: a value after a comparison, a condition after and/or/not, "
                "or a closing ')'",
            ) from None
        column = getattr(error, "column", 0) or 0
        found = text[column - 1 : column + 9].split(" ")[0] if column else ""
        message = f"cannot read the condition at {found!r}" if found else "the condition ends early"
        raise ConditionError(
            message,
            column,
            'write it like: prior_programming == "none" and diagnostic.score < 0.5',
        ) from None
    except LarkError as error:
        cause = error.__context__
        if isinstance(cause, ConditionError):
            raise cause from None
        orig = getattr(error, "orig_exc", None)
        if isinstance(orig, ConditionError):
            raise orig from None
        raise ConditionError(f"cannot read the condition: {error}") from None
    if isinstance(node, Name):
        node = Truth(node)
    assert isinstance(node, Compare | Member | Truth | Not | All | Any_)
    return node


# --- type checking -----------------------------------------------------------------------------

Symbols = Mapping[str, Symbol]

_ORDERED = {ValueType.number, ValueType.duration}
_COMPATIBLE = {
    ValueType.number: {ValueType.number},
    ValueType.duration: {ValueType.duration},
    ValueType.boolean: {ValueType.boolean},
    ValueType.text: {ValueType.text},
    ValueType.choice: {ValueType.text},
}


def _resolve(name: Name, symbols: Symbols) -> Symbol:
    symbol = symbols.get(name.key)
    if symbol is None:
        close = difflib.get_close_matches(name.key, list(symbols), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "declare it, or check the spelling"
        raise ConditionError(f"unknown name '{name.key}'", name.column, hint)
    return symbol


def _check_literal(symbol: Symbol, name: Name, literal: Literal) -> None:
    if literal.type not in _COMPATIBLE[symbol.type]:
        raise ConditionError(
            f"'{name.key}' is a {symbol.type.value}, but is compared with {literal.text} "
            f"(a {literal.type.value})",
            name.column,
            _example(name.key, symbol),
        )
    if symbol.type is ValueType.choice and literal.value not in symbol.values:
        close = difflib.get_close_matches(str(literal.value), symbol.values, n=1, cutoff=0.5)
        hint = f'did you mean "{close[0]}"?' if close else f"use one of {list(symbol.values)}"
        raise ConditionError(
            f"{literal.text} is not a value of '{name.key}' (its values: "
            f"{', '.join(symbol.values)})",
            name.column,
            hint,
        )


def _example(key: str, symbol: Symbol) -> str:
    examples = {
        ValueType.number: f"e.g. {key} >= 0.5",
        ValueType.duration: f"e.g. {key} >= 7d",
        ValueType.boolean: f"e.g. {key} (or: not {key})",
        ValueType.text: f'e.g. {key} == "text"',
        ValueType.choice: f'e.g. {key} == "{symbol.values[0] if symbol.values else "value"}"',
    }
    return examples[symbol.type]


def typecheck(node: Node, symbols: Symbols) -> None:
    """Raise ``ConditionError`` unless every name is declared and every comparison makes sense."""
    match node:
        case All(operands) | Any_(operands):
            for operand in operands:
                typecheck(operand, symbols)
        case Not(operand):
            typecheck(operand, symbols)
        case Truth(subject):
            symbol = _resolve(subject, symbols)
            if symbol.type is not ValueType.boolean:
                raise ConditionError(
                    f"'{subject.key}' is a {symbol.type.value}, not true/false",
                    subject.column,
                    _example(subject.key, symbol),
                )
        case Member(subject, options):
            symbol = _resolve(subject, symbols)
            for option in options:
                _check_literal(symbol, subject, option)
        case Compare(left, op, right):
            if isinstance(left, Literal) and isinstance(right, Literal):
                raise ConditionError(
                    f"{left.text} {op} {right.text} compares two constants",
                    hint="one side must be a name, e.g. diagnostic.score",
                )
            if isinstance(left, Name) and isinstance(right, Name):
                left_symbol, right_symbol = _resolve(left, symbols), _resolve(right, symbols)
                if left_symbol.type != right_symbol.type:
                    raise ConditionError(
                        f"'{left.key}' ({left_symbol.type.value}) and '{right.key}' "
                        f"({right_symbol.type.value}) cannot be compared",
                        left.column,
                    )
                symbol = left_symbol
            else:
                name = left if isinstance(left, Name) else right
                literal = right if isinstance(right, Literal) else left
                assert isinstance(name, Name) and isinstance(literal, Literal)
                symbol = _resolve(name, symbols)
                _check_literal(symbol, name, literal)
            if op not in {"==", "!="} and symbol.type not in _ORDERED:
                raise ConditionError(
                    f"'{op}' needs numbers or durations, but this compares {symbol.type.value}s",
                    hint="use == or != (or 'in [...]')",
                )


# --- compiling ---------------------------------------------------------------------------------

Lookup = Callable[[str], Any]
Test = Callable[[Lookup], bool]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compile(node: Node) -> Test:
    match node:
        case All(operands):
            tests = tuple(_compile(operand) for operand in operands)
            return lambda lookup: all(test(lookup) for test in tests)
        case Any_(operands):
            tests = tuple(_compile(operand) for operand in operands)
            return lambda lookup: any(test(lookup) for test in tests)
        case Not(operand):
            inner = _compile(operand)
            return lambda lookup: not inner(lookup)
        case Truth(subject):
            key = subject.key
            return lambda lookup: lookup(key) is True
        case Member(subject, options):
            key, allowed = subject.key, frozenset(option.value for option in options)
            return lambda lookup: (value := lookup(key)) is not None and value in allowed
        case Compare(left, op, right):
            compare = _OPERATORS[op]
            if isinstance(left, Name) and isinstance(right, Literal):
                key, constant = left.key, right.value
                return lambda lookup: (v := lookup(key)) is not None and compare(v, constant)
            if isinstance(left, Literal) and isinstance(right, Name):
                key, constant = right.key, left.value
                return lambda lookup: (v := lookup(key)) is not None and compare(constant, v)
            assert isinstance(left, Name) and isinstance(right, Name)
            left_key, right_key = left.key, right.key

            def both(lookup: Lookup) -> bool:
                a, b = lookup(left_key), lookup(right_key)
                return a is not None and b is not None and compare(a, b)

            return both
    raise AssertionError(f"unknown node {node!r}")


def names_read(node: Node) -> tuple[str, ...]:
    """The names a condition reads, in the order written, each once."""
    seen: dict[str, None] = {}

    def visit(current: Node | Name | Literal) -> None:
        match current:
            case Name(key, _):
                seen.setdefault(key)
            case All(operands) | Any_(operands):
                for operand in operands:
                    visit(operand)
            case Not(operand):
                visit(operand)
            case Truth(subject) | Member(subject, _):
                visit(subject)
            case Compare(left, _, right):
                visit(left)
                visit(right)

    visit(node)
    return tuple(seen)


@dataclass(frozen=True)
class Condition:
    """A compiled condition: ``test(lookup)`` evaluates it; ``reads`` names what it looks at."""

    source: str
    tree: Node
    reads: tuple[str, ...]
    _test: Test = field(repr=False, compare=False)

    def test(self, lookup: Lookup) -> bool:
        return self._test(lookup)

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        """Evaluate against a mapping (missing names are unknown)."""
        return self._test(values.get)

    def explain(self, lookup: Lookup) -> tuple[bool, dict[str, Any]]:
        """The result and the value of every name read (for explanation traces)."""
        values = {key: lookup(key) for key in self.reads}
        return self._test(values.get), values


def compile_condition(text: str, symbols: Symbols) -> Condition:
    """Parse, type-check and compile ``text``; raise ``ConditionError`` on any problem."""
    tree = parse(text)
    typecheck(tree, symbols)
    return Condition(text, tree, names_read(tree), _compile(tree))


def format_value(value: Any) -> str:
    """A value as a teacher reads it: 0.17, "none", 8 days, unknown."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def duration_seconds(text: str) -> float:
    """A written duration (``"2d"``, ``"36h"``; its unit last) in seconds."""
    return float(text[:-1]) * SECONDS_PER_UNIT[text[-1]]


def format_duration(seconds: float) -> str:
    for unit, size in (("week", 604800.0), ("day", 86400.0), ("hour", 3600.0)):
        if seconds >= size:
            amount = seconds / size
            shown = f"{amount:.1f}".rstrip("0").rstrip(".")
            return f"{shown} {unit}{'' if shown == '1' else 's'}"
    return f"{seconds / 60:.0f} minutes"
