"""The linter: each check with a design that triggers it and one that does not."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent

import pytest
from bench.design_generator import generate_design

from adaptive_lti.core.compiled import compile_design
from adaptive_lti.core.conditions import Symbol, ValueType, parse
from adaptive_lti.core.errors import Problem
from adaptive_lti.core.lint import (
    MAX_COMBINATIONS,
    OTHER_TEXT,
    candidate_values,
    constants_by_name,
    describe_learner,
    enumerate_learners,
    lint,
    number_candidates,
)
from adaptive_lti.core.loader import load_design, load_design_file
from tests.core.design_texts import VALID

# A small design to build variants from: {route} and {completion} are filled in per test.
FRAME = """\
design: small
title: Small
attributes:
  prior_programming: {{type: choice, values: [none, some, experienced], sources: [custom]}}
  age: {{type: number, minimum: 16, maximum: 99, sources: [imported], default: 30}}
skills:
  loops: {{}}
activities:
  diagnostic:
    kind: check
    title: Diagnostic
    questions:
      - {{id: q1, prompt: "1 + 1?", choices: ["1", "2"], answer: "2", skill: loops}}
  lesson: {{kind: page, title: Lesson, body: text}}
  extra: {{kind: page, title: Extra, body: text}}
  games: {{kind: page, title: Games, body: text}}
  data: {{kind: page, title: Data, body: text}}
  project:
    kind: check
    title: Project
    questions:
      - {{id: q1, prompt: "Ends?", choices: ["yes", "no"], answer: "yes", skill: loops}}
route:
{route}
completion:
{completion}
grade: project.score
"""
ROUTE_LINE = 24  # the first line of {route}
DEFAULT_ROUTE = """\
  - diagnostic
  - branch:
      - when: prior_programming == "none" and age > 20
        then: [lesson]
      - when: diagnostic.score < 0.5
        then: [extra]
      - otherwise: true
  - choose: {id: elective, pick: 1, from: [games, data]}
  - project"""
DEFAULT_COMPLETION = """\
  move_on: completed-and-passed
  passed_when: project.score >= 0.6"""


def design(route: str = DEFAULT_ROUTE, completion: str = DEFAULT_COMPLETION) -> str:
    return FRAME.format(route=dedent(route).rstrip("\n"), completion=completion)


def lint_text(text: str) -> list[Problem]:
    return lint(load_design(text, "small.yaml"))


def codes(text: str) -> list[str]:
    return [problem.code for problem in lint_text(text)]


def find(text: str, code: str) -> Problem:
    matches = [problem for problem in lint_text(text) if problem.code == code]
    assert len(matches) == 1, [str(p) for p in lint_text(text)]
    return matches[0]


# --- clean designs ----------------------------------------------------------------------------------


def test_the_frame_and_the_reference_design_are_clean() -> None:
    assert lint_text(design()) == []
    assert lint(load_design(VALID)) == []


def test_the_generated_thousand_activity_design_lints_clean_and_fast() -> None:
    compiled = load_design(generate_design(1000))
    started = time.perf_counter()
    problems = lint(compiled)
    elapsed = time.perf_counter() - started
    assert [p for p in problems if p.severity == "error"] == []
    assert elapsed < 1.0, f"lint took {elapsed:.2f} s"


# --- dead ends --------------------------------------------------------------------------------------


def test_a_branch_that_misses_some_learners_is_a_dead_end_with_an_example() -> None:
    route = """\
      - diagnostic
      - branch:
          - when: prior_programming == "none"
            then: [lesson]
          - when: prior_programming == "experienced" and diagnostic.score >= 0.8
            then: [extra]
      - games
      - data
      - project"""
    problem = find(design(route), "dead-end")
    assert problem.severity == "error"
    assert problem.message == (
        "some learners match no case of this branch and have no route, e.g. "
        "prior_programming=some, diagnostic.score=0"
    )
    assert (problem.line, problem.column) == (ROUTE_LINE + 1, 3)  # the 'branch' key
    assert "otherwise: true" in problem.hint


def test_cases_that_cover_every_value_are_not_a_dead_end() -> None:
    route = """\
      - diagnostic
      - branch:
          - when: diagnostic.score < 0.5
            then: [lesson]
          - when: diagnostic.score >= 0.5
            then: [extra]
      - games
      - data
      - project"""
    assert "dead-end" not in codes(design(route))


def test_an_unknown_attribute_falls_through_a_branch_over_its_values() -> None:
    # prior_programming comes from a custom parameter only: it may be missing.
    route = """\
      - diagnostic
      - branch:
          - when: prior_programming in ["none", "some"]
            then: [lesson]
          - when: prior_programming == "experienced"
            then: [extra]
      - games
      - data
      - project"""
    problem = find(design(route), "dead-end")
    assert problem.message.endswith("e.g. prior_programming=unknown")


# --- unreachable activities and cases ----------------------------------------------------------------


def test_an_activity_not_on_the_route() -> None:
    route = """\
      - diagnostic
      - games
      - data
      - project"""
    problems = [p for p in lint_text(design(route)) if p.code == "unreachable-activity"]
    assert [p.message for p in problems] == [
        "activity 'lesson' is not on the route: no learner reaches it",
        "activity 'extra' is not on the route: no learner reaches it",
    ]
    assert [(p.line, p.column, p.severity) for p in problems] == [
        (14, 3, "warning"),
        (15, 3, "warning"),
    ]


def test_a_case_shadowed_by_an_earlier_one_makes_its_activities_unreachable() -> None:
    route = """\
      - diagnostic
      - branch:
          - name: low
            when: diagnostic.score < 0.5
            then: [lesson]
          - name: lower
            when: diagnostic.score < 0.3
            then: [extra]
          - otherwise: true
      - choose: {id: elective, pick: 1, from: [games, data]}
      - project"""
    text = design(route)
    shadowed = find(text, "case-never-taken")
    assert shadowed.message == (
        "case 'lower' is never taken: case 'low' already takes every learner it would"
    )
    assert (shadowed.line, shadowed.column) == (ROUTE_LINE + 6, 13)
    unreachable = find(text, "unreachable-activity")
    assert unreachable.message == (
        f"no learner reaches activity 'extra': case 'lower' of the branch at line "
        f"{ROUTE_LINE + 1} is never taken"
    )


def test_a_case_after_an_always_true_case() -> None:
    route = """\
      - diagnostic
      - branch:
          - name: everyone
            when: age >= 16
            then: [lesson]
          - name: nobody
            when: age > 50
            then: [extra]
          - otherwise: true
      - choose: {id: elective, pick: 1, from: [games, data]}
      - project"""
    found = codes(design(route))
    assert found.count("condition-always-true") == 1
    assert found.count("case-never-taken") == 2  # 'nobody' and 'otherwise'
    assert "unreachable-activity" in found


def test_a_condition_that_never_holds() -> None:
    route = """\
      - diagnostic
      - branch:
          - when: age < 16
            then: [lesson]
          - otherwise: true
            then: [extra]
      - choose: {id: elective, pick: 1, from: [games, data]}
      - project"""
    problem = find(design(route), "condition-never-true")
    assert problem.message == "the condition 'age < 16' holds for no learner here"
    assert "unreachable-activity" in codes(design(route))


def test_reading_a_score_before_the_activity_is_done() -> None:
    route = """\
      - branch:
          - when: diagnostic.score < 0.5
            then: [lesson]
          - otherwise: true
            then: [extra]
      - diagnostic
      - choose: {id: elective, pick: 1, from: [games, data]}
      - project"""
    problem = find(design(route), "read-before-done")
    assert problem.message == (
        "the condition reads 'diagnostic.score' before any learner can have done 'diagnostic'"
    )


def test_reading_the_score_of_a_page() -> None:
    route = """\
      - diagnostic
      - lesson
      - branch:
          - when: lesson.score < 0.5
            then: [extra]
          - otherwise: true
      - choose: {id: elective, pick: 1, from: [games, data]}
      - project"""
    problem = find(design(route), "no-score")
    assert "'lesson' is a page, and only checks have a score" in problem.message


# --- loops --------------------------------------------------------------------------------------------


def test_remediation_without_a_lesson_that_never_triggers() -> None:
    route = """\
      - diagnostic
      - remediate: {check: project, lesson: project, below: 0, max: 2}
      - lesson
      - extra
      - choose: {id: elective, pick: 1, from: [games, data]}"""
    problems = [p for p in lint_text(design(route)) if p.code == "loop-without-exit"]
    assert [p.message for p in problems] == [
        "the remediation repeats 'project' with no lesson in between",
        "the remediation never triggers: no score is below 0",
    ]


def test_remediation_that_outlives_the_checks_attempts() -> None:
    text = design().replace("    title: Project\n", "    title: Project\n    max_attempts: 2\n")
    text = text.replace(
        "\n- project\n", "\n- remediate: {check: project, lesson: lesson, below: 0.6, max: 3}\n"
    )
    problem = find(text, "loop-without-exit")
    assert problem.message == (
        "the remediation may ask for 4 attempts at 'project', but it allows 2"
    )


def test_remediation_of_a_page_is_an_error() -> None:
    route = DEFAULT_ROUTE.replace(
        "  - project",
        "  - remediate: {check: lesson, lesson: extra, below: 0.5, max: 1}\n  - project",
    )
    problem = find(design(route), "not-a-check")
    assert problem.severity == "error"


def test_a_review_of_itself_and_a_review_never_due() -> None:
    route = DEFAULT_ROUTE + "\n  - review: {activity: project, of: project, after: 7d}"
    assert "loop-without-exit" in codes(design(route))
    early = DEFAULT_ROUTE.replace(
        "  - diagnostic",
        "  - review: {activity: lesson, of: diagnostic, after: 7d}\n  - diagnostic",
    )
    problem = find(design(early), "review-never-due")
    assert "no learner has done 'diagnostic'" in problem.message


def test_a_review_after_its_activity_is_fine() -> None:
    route = DEFAULT_ROUTE.replace(
        "  - project", "  - review: {activity: lesson, of: diagnostic, after: 7d}\n  - project"
    )
    assert lint_text(design(route)) == []


# --- choices ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "code", "severity", "message"),
    [
        (
            "{id: e, pick: 3, from: [games, data]}",
            "choice-impossible",
            "error",
            "learners must pick 3, but only 2 activities are on offer",
        ),
        (
            "{id: e, min: 2, from: [games, data], required: [data]}",
            "choice-impossible",
            "error",
            "learners must pick at least 2, but only 1 activity is on offer",
        ),
        (
            "{id: e, min: 2, max: 1, from: [games, data]}",
            "choice-impossible",
            "error",
            "'min' (2) is more than 'max' (1)",
        ),
        (
            "{id: e, min: 1, max: 5, from: [games, data]}",
            "choice-impossible",
            "warning",
            "'max' is 5, but only 2 activities are on offer",
        ),
        (
            "{id: e, max: 2, from: [games, data]}",
            "choice-may-be-empty",
            "warning",
            "learners may choose nothing at 'e'",
        ),
        (
            "{id: e, pick: 1, from: [games, data, games]}",
            "choice-overlap",
            "warning",
            "'from' lists 'games' more than once",
        ),
    ],
)
def test_choice_sets(choice: str, code: str, severity: str, message: str) -> None:
    route = DEFAULT_ROUTE.replace("{id: elective, pick: 1, from: [games, data]}", choice)
    problem = find(design(route), code)
    assert (problem.severity, problem.message) == (severity, message)


def test_a_required_activity_also_on_offer() -> None:
    route = DEFAULT_ROUTE.replace(
        "{id: elective, pick: 1, from: [games, data]}",
        "{id: e, pick: 1, from: [games, data, lesson], required: [lesson]}",
    )
    problem = find(design(route), "choice-overlap")
    assert problem.message == "'lesson' is both required and on offer"


# --- completion ---------------------------------------------------------------------------------------


def test_passed_when_that_holds_on_entry() -> None:
    completion = "  move_on: passed\n  passed_when: not project.passed or diagnostic.score < 0.5"
    problem = find(design(completion=completion), "satisfied-on-entry")
    assert problem.severity == "error"
    assert "'passed_when' already holds for a learner with project.passed=false" in (
        problem.message
    )


def test_a_route_every_learner_can_skip_is_completed_on_entry() -> None:
    route = """\
      - branch:
          - when: age > 40
            then: [diagnostic, lesson, extra, games, data, project]
          - otherwise: true"""
    problem = find(design(route, "  move_on: completed"), "satisfied-on-entry")
    assert "every step of the route can be skipped" in problem.message


def test_mastery_completion_with_priors_already_mastered() -> None:
    text = design(completion="  move_on: mastery").replace(
        "  loops: {}", "  loops: {prior: 0.9, mastery: 0.85}"
    )
    assert "satisfied-on-entry" in codes(text)
    assert "satisfied-on-entry" not in codes(design(completion="  move_on: mastery"))


def test_passed_when_that_can_never_hold() -> None:
    completion = "  move_on: completed-and-passed\n  passed_when: project.score > 1"
    problem = find(design(completion=completion), "never-passed")
    assert problem.severity == "error"


def test_move_on_passed_without_passed_when() -> None:
    problem = find(design(completion="  move_on: passed"), "never-passed")
    assert problem.severity == "error"
    assert problem.message.endswith(": no learner can meet it")
    either = find(design(completion="  move_on: completed-or-passed"), "never-passed")
    assert either.severity == "warning"


# --- declarations -------------------------------------------------------------------------------------


def test_unused_attribute_and_skill() -> None:
    text = design().replace(
        "skills:\n", "  goal: {type: choice, values: [a, b]}\nskills:\n  syntax: {}\n"
    )
    problems = {p.code: p for p in lint_text(text)}
    assert problems["unused-attribute"].message.startswith("attribute 'goal' is never used")
    assert problems["unused-skill"].message.startswith(
        "no question gives evidence for skill 'syntax'"
    )


def test_intake_asking_an_attribute_without_the_intake_source() -> None:
    text = design().replace(
        "activities:\n",
        "activities:\n  welcome: {kind: intake, title: Welcome, ask: [prior_programming]}\n",
    )
    text = text.replace("  - diagnostic\n", "  - welcome\n  - diagnostic\n", 1)
    problem = find(text, "intake-source")
    assert problem.message == (
        "'welcome' asks 'prior_programming', whose sources do not include intake"
    )
    fixed = text.replace("sources: [custom]", "sources: [custom, intake]")
    assert "intake-source" not in codes(fixed)


def test_grade_on_an_activity_that_is_not_a_check() -> None:
    text = design().replace("grade: project.score", "grade: lesson.score")
    problem = find(text, "not-a-check")
    assert problem.message == "the grade is the score of 'lesson', a page: it has no score"


def test_migration_to_an_activity_of_another_kind() -> None:
    text = design() + "migrations:\n  - from_version: 1\n    activities: {diagnostic: lesson}\n"
    problem = find(text, "migration-kind")
    assert "from 'diagnostic' (a check) to 'lesson' (a page)" in problem.message
    same = design() + "migrations:\n  - from_version: 1\n    activities: {lesson: extra}\n"
    assert "migration-kind" not in codes(same)


# --- the reasoning helpers ----------------------------------------------------------------------------


def test_number_candidates_cover_every_interval() -> None:
    assert number_candidates([0.5], 0.0, 1.0) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert number_candidates([0.5, 0.8]) == (-0.5, 0.5, 0.65, 0.8, 1.8)
    assert number_candidates([], 16, 99) == (16.0, 57.5, 99.0)
    assert number_candidates([2], 0.0, integer=True) == (0.0, 1.0, 2.0, 3.0)
    assert number_candidates([]) == (0.0,)


def test_candidate_values_by_type() -> None:
    choice = Symbol(ValueType.choice, ("a", "b"))
    assert candidate_values(choice, [], may_be_unknown=True) == ("a", "b", None)
    assert candidate_values(Symbol(ValueType.boolean), [], may_be_unknown=False) == (True, False)
    text = candidate_values(Symbol(ValueType.text), ["x"], may_be_unknown=False)
    assert text == ("x", OTHER_TEXT)


def test_constants_are_collected_and_shared_between_compared_names() -> None:
    trees = [parse("age > 30 and diagnostic.score < loops.score"), parse('goal in ["a", "b"]')]
    constants = constants_by_name(trees)
    assert constants["age"] == {30.0}
    assert constants["goal"] == {"a", "b"}
    assert constants["diagnostic.score"] == constants["loops.score"] == set()


def test_enumeration_is_exhaustive_under_the_cap_and_sampled_above() -> None:
    learners, exhaustive = enumerate_learners({"a": [1, 2], "b": ["x", "y", "z"]})
    assert exhaustive and len(learners) == 6
    big = {f"n{index}": list(range(10)) for index in range(5)}
    sample, exhaustive = enumerate_learners(big)
    assert not exhaustive and len(sample) == MAX_COMBINATIONS
    assert sample == enumerate_learners(big)[0]  # seeded: the same sample every time


def test_describe_learner() -> None:
    symbols = {"since(x)": Symbol(ValueType.duration)}
    assert describe_learner(
        {"prior_programming": "some", "diagnostic.score": 0.6, "x.passed": False, "y": None},
        symbols,
    ) == ("prior_programming=some, diagnostic.score=0.6, x.passed=false, y=unknown")
    assert describe_learner({"since(x)": 8 * 86400.0}, symbols) == "since(x)=1.1 weeks"


def test_the_shipped_example_designs_have_no_lint_errors() -> None:
    root = Path(__file__).resolve().parents[2]
    examples = sorted(root.glob("examples/*/design*.yaml"))
    assert examples, "no example designs found"
    for example in examples:
        errors = [str(p) for p in lint(load_design_file(example)) if p.severity == "error"]
        assert errors == [], example


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            "{type: choice, values: [a, b], default: c}",
            "the default of 'extra_attribute' is 'c', but it must be one of a, b",
        ),
        (
            "{type: number, minimum: 0, maximum: 10, default: 11}",
            "the default of 'extra_attribute' is 11.0, but it must be a number from 0 to 10",
        ),
        (
            "{type: boolean, default: maybe}",
            "the default of 'extra_attribute' is 'maybe', but it must be true or false",
        ),
    ],
)
def test_attribute_defaults_must_fit(declaration: str, message: str) -> None:
    text = design().replace("skills:\n", f"  extra_attribute: {declaration}\nskills:\n")
    problem = find(text, "invalid-default")
    assert (problem.severity, problem.message) == ("error", message)


def test_labels_for_values_an_attribute_does_not_have() -> None:
    declaration = "{type: choice, values: [a, b], labels: {a: A, c: C}}"
    text = design().replace("skills:\n", f"  extra_attribute: {declaration}\nskills:\n")
    problem = find(text, "invalid-default")
    assert problem.severity == "warning"
    assert problem.message == "a label is given for 'c', which is not a value of 'extra_attribute'"


def test_a_split_group_read_before_the_split_is_unknown() -> None:
    split = "  - split: {id: pilot, variants: {a: {weight: 1}, b: {weight: 1}}}"
    branch = """\
  - branch:
      - when: group.pilot == "a"
        then: [lesson]
      - when: group.pilot == "b"
        then: [extra]"""
    after = DEFAULT_ROUTE.replace("  - project", f"{split}\n{branch}\n  - project")
    assert "dead-end" not in codes(design(after))
    before = DEFAULT_ROUTE.replace("  - diagnostic", f"{branch}\n{split}\n  - diagnostic")
    assert find(design(before), "dead-end").message.endswith("e.g. group.pilot=unknown")


def test_a_design_compiled_without_a_source_map_is_linted_without_positions() -> None:
    loaded = load_design(design().replace("skills:\n", "  goal: {type: text}\nskills:\n"))
    compiled, problems = compile_design(loaded.design)
    assert compiled is not None and problems == []
    [problem] = lint(compiled)
    assert (problem.code, problem.file, problem.line, problem.column) == (
        "unused-attribute",
        "<design>",
        0,
        0,
    )
    assert str(problem).startswith("<design>: warning: attribute 'goal' is never used")
