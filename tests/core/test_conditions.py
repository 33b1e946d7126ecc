"""Conditions: the grammar, precedence, type checking with suggestions, evaluation with unknowns."""

from __future__ import annotations

import pytest

from adaptive_lti.core.conditions import (
    All,
    Any_,
    Compare,
    ConditionError,
    Literal,
    Member,
    Name,
    Not,
    Symbol,
    Truth,
    ValueType,
    compile_condition,
    format_duration,
    format_value,
    names_read,
    parse,
)

SYMBOLS = {
    "prior_programming": Symbol(ValueType.choice, ("none", "some", "experienced")),
    "goal": Symbol(ValueType.choice, ("academic", "vocational", "interest")),
    "nickname": Symbol(ValueType.text),
    "needs_captions": Symbol(ValueType.boolean),
    "age": Symbol(ValueType.number, minimum=16, maximum=99),
    "diagnostic.score": Symbol(ValueType.number, minimum=0.0, maximum=1.0),
    "diagnostic.attempts": Symbol(ValueType.number, minimum=0.0),
    "diagnostic.passed": Symbol(ValueType.boolean),
    "loops-check.score": Symbol(ValueType.number, minimum=0.0, maximum=1.0),
    "since(loops-check)": Symbol(ValueType.duration, minimum=0.0),
    "mastery.loops": Symbol(ValueType.number, minimum=0.0, maximum=1.0),
    "mastered.loops": Symbol(ValueType.boolean),
    "group.pilot": Symbol(ValueType.choice, ("control", "hints")),
}


# --- the grammar ----------------------------------------------------------------------------------


def test_comparison_of_a_dotted_name_with_a_number() -> None:
    assert parse("diagnostic.score < 0.5") == Compare(
        Name("diagnostic.score", 1), "<", Literal(0.5, ValueType.number, "0.5")
    )


def test_and_binds_tighter_than_or() -> None:
    tree = parse('goal == "academic" or goal == "vocational" and age > 30')
    assert isinstance(tree, Any_)
    assert isinstance(tree.operands[0], Compare)
    assert isinstance(tree.operands[1], All)
    assert len(tree.operands[1].operands) == 2


def test_not_binds_tighter_than_and_and_parentheses_override() -> None:
    tree = parse("not needs_captions and mastered.loops")
    assert isinstance(tree, All)
    assert tree.operands[0] == Not(Truth(Name("needs_captions", 5)))
    grouped = parse("not (needs_captions and mastered.loops)")
    assert isinstance(grouped, Not)
    assert isinstance(grouped.operand, All)


def test_membership_durations_and_since() -> None:
    tree = parse('goal in ["academic", "interest"] and since(loops-check) >= 7d')
    assert isinstance(tree, All)
    member, compare = tree.operands
    assert isinstance(member, Member)
    assert [option.value for option in member.options] == ["academic", "interest"]
    assert isinstance(compare, Compare)
    assert compare.left == Name("since(loops-check)", 38)
    assert compare.right == Literal(7 * 86400.0, ValueType.duration, "7d")


def test_single_quotes_booleans_and_negative_numbers() -> None:
    single = parse("goal == 'academic'")
    assert isinstance(single, Compare) and single.right.value == "academic"
    assert parse("needs_captions == true") == Compare(
        Name("needs_captions", 1), "==", Literal(True, ValueType.boolean, "true")
    )
    compare = parse("age > -1")
    assert isinstance(compare, Compare) and compare.right == Literal(-1.0, ValueType.number, "-1")


def test_a_bare_name_is_a_truth_test() -> None:
    assert parse("mastered.loops") == Truth(Name("mastered.loops", 1))


def test_keywords_are_not_names_but_names_may_start_with_them() -> None:
    assert names_read(parse("order == 1 and notes == 2 or india == 3")) == (
        "order",
        "notes",
        "india",
    )


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("diagnostic.score << 0.5", 19),
        ("goal == academic)", 17),
        ("age > 3 3", 9),
        ("and age > 3", 1),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert caught.value.column == column
    assert caught.value.message.startswith("cannot read the condition at")
    assert "write it like" in caught.value.hint


@pytest.mark.parametrize("text", ["diagnostic.score <", "age > 3 and ", "(age > 3", "not"])
def test_a_condition_that_ends_early_points_past_its_end(text: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert caught.value.message == "the condition ends too early"
    assert caught.value.column == len(text.rstrip()) + 1


def test_a_literal_alone_is_not_a_condition() -> None:
    with pytest.raises(ConditionError, match="alone is not a condition"):
        parse("0.5")


def test_overlong_conditions_are_refused() -> None:
    with pytest.raises(ConditionError, match="longer than 2000"):
        parse("age > 1 and " * 200 + "age > 1")


# --- type checking --------------------------------------------------------------------------------


def test_unknown_name_suggests_the_nearest_declared_one() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition("diagnostic.scor < 0.5", SYMBOLS)
    assert caught.value.message == "unknown name 'diagnostic.scor'"
    assert caught.value.hint == "did you mean 'diagnostic.score'?"
    assert caught.value.column == 1


def test_unknown_choice_value_suggests_the_nearest_value() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition('age > 3 and prior_programming == "nnone"', SYMBOLS)
    assert "is not a value of 'prior_programming'" in caught.value.message
    assert caught.value.hint == 'did you mean "none"?'
    assert caught.value.column == 13


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('diagnostic.score == "high"', "is a number, but is compared with"),
        ("goal > 3", "is a choice, but is compared with"),
        ('goal < "academic"', "'<' needs numbers or durations"),
        ("age", "is a number, not true/false"),
        ("since(loops-check) > 3", "is a duration, but is compared with 3"),
        ("age == goal", "cannot be compared"),
        ("1 < 2", "compares two constants"),
    ],
)
def test_type_errors_are_explained(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        compile_condition(text, SYMBOLS)


# --- evaluation -----------------------------------------------------------------------------------


def test_evaluation_follows_precedence() -> None:
    condition = compile_condition(
        'prior_programming == "none" or diagnostic.score < 0.5 and age > 18', SYMBOLS
    )
    assert condition.evaluate({"prior_programming": "none", "diagnostic.score": 0.9, "age": 17})
    assert condition.evaluate({"prior_programming": "some", "diagnostic.score": 0.2, "age": 30})
    assert not condition.evaluate({"prior_programming": "some", "diagnostic.score": 0.2, "age": 17})


def test_a_comparison_with_an_unknown_value_is_false_and_its_negation_true() -> None:
    condition = compile_condition("diagnostic.score < 0.5", SYMBOLS)
    negated = compile_condition("not (diagnostic.score < 0.5)", SYMBOLS)
    assert not condition.evaluate({})
    assert negated.evaluate({})
    assert not compile_condition('goal in ["academic"]', SYMBOLS).evaluate({})
    assert not compile_condition("mastered.loops", SYMBOLS).evaluate({})
    assert not compile_condition("age == age", SYMBOLS).evaluate({})


def test_durations_compare_in_seconds() -> None:
    condition = compile_condition("since(loops-check) >= 1w", SYMBOLS)
    assert condition.evaluate({"since(loops-check)": 8 * 86400.0})
    assert not condition.evaluate({"since(loops-check)": 6 * 86400.0})


def test_literal_on_the_left_and_two_names() -> None:
    assert compile_condition("0.5 > diagnostic.score", SYMBOLS).evaluate({"diagnostic.score": 0.4})
    both = compile_condition("diagnostic.score < loops-check.score", SYMBOLS)
    assert both.evaluate({"diagnostic.score": 0.4, "loops-check.score": 0.6})
    assert not both.evaluate({"diagnostic.score": 0.4})


def test_explain_returns_every_value_read() -> None:
    condition = compile_condition('goal == "academic" and group.pilot != "hints"', SYMBOLS)
    values = {"goal": "academic", "group.pilot": "control"}
    result, read = condition.explain(values.get)
    assert result is True
    assert read == {"goal": "academic", "group.pilot": "control"}
    assert condition.reads == ("goal", "group.pilot")


def test_values_are_formatted_for_teachers() -> None:
    assert format_value(None) == "unknown"
    assert format_value(True) == "yes"
    assert format_value(0.1666) == "0.17"
    assert format_value(2.0) == "2"
    assert format_value("none") == '"none"'
    assert format_duration(8 * 86400.0) == "1.1 weeks"
    assert format_duration(86400.0) == "1 day"
    assert format_duration(600.0) == "10 minutes"
