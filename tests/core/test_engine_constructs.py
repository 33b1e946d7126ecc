"""Each route construct's semantics (core/design.py's docstring), one small design at a time."""

from __future__ import annotations

from collections import Counter
from textwrap import dedent, indent

import pytest

from adaptive_lti.core import engine, migration
from adaptive_lti.core.constructs import split
from adaptive_lti.core.design import SplitSpec
from adaptive_lti.core.engine import ChoiceOffered, DesignCompleted, NeedsInput, NextActivity
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import Answered, Completed, Migrated
from tests.core.routing import T0, Learner, compile_yaml

ACTIVITIES = """\
intro: {kind: page, title: Intro, body: "Hello"}
a: {kind: page, title: Alpha, body: "a"}
b: {kind: page, title: Beta, body: "b"}
c: {kind: page, title: Gamma, body: "c"}
d: {kind: page, title: Delta, body: "d"}
lesson: {kind: page, title: Lesson, body: "l"}
remedial: {kind: page, title: Remedial, body: "r"}
support: {kind: link, title: Support, url: "https://example.org/help"}
quiz:
  kind: check
  title: Quiz
  questions:
    - {id: q1, prompt: "1+1?", choices: ["2", "3"], answer: "2", skill: sums}
    - {id: q2, prompt: "2+2?", choices: ["4", "5"], answer: "4", skill: sums}
exam:
  kind: check
  title: Exam
  pass_mark: 0.5
  max_attempts: 2
  questions:
    - {id: e1, prompt: "3+3?", choices: ["6", "7"], answer: "6", skill: sums}
review-quiz:
  kind: check
  title: Review quiz
  questions:
    - {id: r1, prompt: "4+4?", choices: ["8", "9"], answer: "8", skill: sums}
"""


def build(route: str, *, extra: str = "", activities: str = ACTIVITIES, version: int = 1):  # type: ignore[no-untyped-def]
    text = (
        dedent(f"""\
        design: constructs
        title: Constructs
        version: {version}
        attributes:
          level: {{type: choice, values: [low, high], sources: [custom, intake]}}
          age: {{type: number, minimum: 0, maximum: 120, sources: [custom]}}
        skills:
          sums: {{prior: 0.3, learn: 0.2, guess: 0.2, slip: 0.1}}
        activities:
        """)
        + indent(activities, "  ")
        + "route:\n"
        + indent(dedent(route), "  ")
        + dedent(extra)
    )
    return compile_yaml(text)


def start(design, key: str = "learner-1", **custom: str) -> Learner:  # type: ignore[no-untyped-def]
    learner = Learner(design, key)
    learner.launch(custom=custom)
    return learner


# --- sequence, intake, activity completion ------------------------------------------------------


def test_a_sequence_offers_each_activity_in_turn_then_completes() -> None:
    learner = start(build("- a\n- b\n"))
    assert learner.current() == "a"
    learner.complete("a")
    assert learner.current() == "b"
    decision = learner.complete("b")
    assert isinstance(decision, DesignCompleted)
    assert decision.satisfied and decision.passed is None and decision.grade is None
    assert learner.offered() == ["a", "b"]


def test_completing_another_activity_does_not_move_the_route() -> None:
    learner = start(build("- a\n- b\n"))
    learner.complete("c")
    assert learner.current() == "a"
    assert learner.decision.resumed  # still on a, said as "Continue with"
    assert learner.decision.explanation.learner_text == "Continue with Alpha."
    assert learner.state.outcome("c").completed


def test_an_intake_asks_only_unknown_attributes_and_rejects_bad_answers() -> None:
    activities = ACTIVITIES + "ask: {kind: intake, title: About you, ask: [level]}\n"
    design = build("- ask\n- a\n", activities=activities)
    asked = start(design)
    assert isinstance(asked.decision, NeedsInput)
    with pytest.raises(EngineError, match="'medium' is not a valid answer for 'level'"):
        asked.intake("ask", level="medium")
    asked.intake("ask", level="high")
    assert asked.current() == "a"
    told = start(design, level="LOW")  # custom parameter, matched case-insensitively
    assert told.current() == "a"
    assert told.state.attributes == {"level": "low"}


def test_a_check_with_a_pass_mark_is_retried_until_passed_or_out_of_attempts() -> None:
    learner = start(build("- exam\n- a\n"))
    learner.complete("exam", 0.0)
    assert learner.decision.reason == "retry"  # type: ignore[union-attr]
    assert learner.decision.attempts_left == 1  # type: ignore[union-attr]
    learner.complete("exam", 0.0)
    assert learner.current() == "a"  # two attempts allowed, both used: the route moves on
    assert "no attempts left" in learner.decision.explanation.instructor_detail
    with pytest.raises(EngineError, match="no attempts left at 'exam'"):
        learner.complete("exam", 1.0)


def test_move_on_completed_lets_a_failed_check_through() -> None:
    activities = ACTIVITIES.replace(
        "  pass_mark: 0.5\n", "  pass_mark: 0.5\n  move_on: completed\n"
    )
    learner = start(build("- exam\n- a\n", activities=activities))
    learner.complete("exam", 0.0)
    assert learner.current() == "a"
    assert learner.state.outcome("exam").passed is False


def test_a_score_is_computed_from_the_answers_and_feeds_mastery() -> None:
    learner = start(build("- quiz\n"))
    learner.answer("quiz", right=1)
    assert learner.state.outcome("quiz").score == 0.5
    assert 0.3 < learner.state.mastery["sums"] < 0.6
    with pytest.raises(EngineError, match="has no question 'q9'"):
        learner.send(Answered(at=T0, activity="quiz", question="q9", choice="x", correct=True))
    with pytest.raises(EngineError, match="unknown activity 'nope'"):
        learner.send(Completed(at=T0, activity="nope"))


# --- branch ----------------------------------------------------------------------------------------

BRANCH = """\
- branch:
    - name: young
      when: age < 18
      then: [a]
    - name: adult
      when: age >= 18
      then: [b]
- d
"""


def test_the_first_matching_case_is_taken_and_explained() -> None:
    learner = start(build(BRANCH), age="12")
    assert learner.offered() == ["a"]
    assert learner.decision.explanation.learner_text == (
        "You are on the young route because your age is 12 (below 18). Next: Alpha."
    )
    assert learner.decision.routes == ("young",)
    older = start(build(BRANCH), age="40")
    assert older.offered() == ["b"]


def test_when_no_case_holds_the_route_continues_after_the_branch() -> None:
    learner = start(build(BRANCH))  # age unknown: both comparisons are false
    assert learner.current() == "d"
    assert "no case holds" in learner.decision.explanation.instructor_detail
    assert learner.state.routes == {}


def test_a_later_case_is_skipped_when_an_earlier_one_holds() -> None:
    route = """\
    - branch:
        - {name: first, when: age >= 0, then: [a]}
        - {name: second, when: age >= 10, then: [b]}
        - {name: rest, otherwise: true, then: [c]}
    """
    learner = start(build(route), age="50")
    assert learner.offered() == ["a"]
    learner.complete("a")
    assert isinstance(learner.decision, DesignCompleted)


def test_otherwise_explains_why_every_earlier_case_failed() -> None:
    route = """\
    - branch:
        - {name: high-level, when: level == "high", then: [a]}
        - {name: others, otherwise: true, then: [b]}
    """
    learner = start(build(route), level="low")
    assert learner.decision.explanation.learner_text == (
        "You are on the others route because the other routes did not apply (high-level: your "
        "level is low, not high). Next: Beta."
    )


# --- remediation ------------------------------------------------------------------------------------

REMEDIATE = """\
- remediate: {check: quiz, lesson: remedial, below: 0.7, max: 2, support: support, flag: needs-help}
- d
"""


def test_passing_the_check_first_time_skips_remediation() -> None:
    learner = start(build(REMEDIATE))
    learner.answer("quiz", right=2)
    assert learner.offered() == ["quiz", "d"]
    assert learner.state.remediation == {}


def test_remediation_is_bounded_then_support_and_a_flag() -> None:
    learner = start(build(REMEDIATE))
    for _ in range(3):
        learner.answer("quiz", right=0)
        if learner.current() == "remedial":
            learner.complete("remedial")
    assert learner.offered() == ["quiz", "remedial", "quiz", "remedial", "quiz", "support"]
    assert learner.decision.flags == ("needs-help",)
    learner.complete("support")
    assert learner.current() == "d"
    assert learner.state.remediation == {"route[0]": 2}


def test_remediation_stops_as_soon_as_the_check_passes() -> None:
    learner = start(build(REMEDIATE))
    learner.answer("quiz", right=0)
    learner.complete("remedial")
    learner.answer("quiz", right=2)
    assert learner.offered() == ["quiz", "remedial", "quiz", "d"]
    assert learner.decision.flags == ()


def test_remediation_without_support_raises_the_flag_and_moves_on() -> None:
    route = "- remediate: {check: quiz, lesson: remedial, below: 0.7, max: 1, flag: stuck}\n- d\n"
    learner = start(build(route))
    learner.answer("quiz", right=0)
    learner.complete("remedial")
    learner.answer("quiz", right=1)
    assert learner.current() == "d"
    assert set(learner.state.flags) == {"stuck"}


# --- choose -------------------------------------------------------------------------------------------

CHOOSE = """\
- choose: {id: pick-two, min: 1, max: 2, from: [a, b, c, d], required: [d]}
- intro
"""


def test_a_choice_offers_options_with_bounds_and_the_required_core() -> None:
    learner = start(build(CHOOSE))
    decision = learner.decision
    assert isinstance(decision, ChoiceOffered)
    assert [o.activity for o in decision.options] == ["a", "b", "c"]
    assert [o.activity for o in decision.required] == ["d"]
    assert (decision.least, decision.most) == (1, 2)
    assert decision.explanation.learner_text == (
        "Choose 1 to 2 of: Alpha, Beta, Gamma. Everyone also does: Delta."
    )
    learner.choose("pick-two", "c", "a")
    # The core first, then the picks in the order picked.
    for activity in ("d", "c", "a"):
        assert learner.current() == activity
        learner.complete(activity)
    assert learner.current() == "intro"
    assert learner.state.choices == {"pick-two": ("c", "a")}


@pytest.mark.parametrize(
    "picked, message",
    [
        ((), "0 picked in 'pick-two', but between 1 and 2 must be picked"),
        (("a", "b", "c"), "3 picked in 'pick-two', but between 1 and 2 must be picked"),
        (("d",), "'d' cannot be picked in 'pick-two'"),
        (("z",), "'z' cannot be picked in 'pick-two'"),
        (("a", "a"), "the same activity was picked twice"),
    ],
)
def test_a_choice_that_breaks_its_rules_is_refused_and_changes_nothing(
    picked: tuple[str, ...], message: str
) -> None:
    learner = start(build(CHOOSE))
    before = learner.state
    with pytest.raises(EngineError, match=message):
        learner.choose("pick-two", *picked)
    assert learner.state == before


def test_a_choice_cannot_be_made_before_it_is_reached_or_twice() -> None:
    learner = start(build("- a\n" + CHOOSE))
    with pytest.raises(EngineError, match="the choice 'pick-two' is not open now"):
        learner.choose("pick-two", "a")
    with pytest.raises(EngineError, match="the design has no choice 'other'"):
        learner.choose("other", "a")
    learner.complete("a")
    learner.choose("pick-two", "b")
    with pytest.raises(EngineError, match="was already made"):
        learner.choose("pick-two", "c")


def test_choose_exactly_k() -> None:
    learner = start(build("- choose: {id: one, pick: 1, from: [a, b]}\n"))
    with pytest.raises(EngineError, match="but 1 must be picked"):
        learner.choose("one", "a", "b")
    learner.choose("one", "b")
    assert learner.current() == "b"


# --- split -----------------------------------------------------------------------------------------------

SPLIT = """\
- split:
    id: pilot
    variants:
      control: {weight: 1, then: [a]}
      treatment: {weight: 3, then: [b]}
- branch:
    - {name: treated, when: group.pilot == "treatment", then: [c]}
    - {name: untreated, otherwise: true, then: []}
"""


def test_a_split_is_stable_per_learner_and_readable_in_conditions() -> None:
    design = build(SPLIT)
    groups = {}
    for number in range(40):
        learner = start(design, f"learner-{number}")
        again = start(design, f"learner-{number}")
        assert learner.state.groups == again.state.groups
        group = learner.state.groups["pilot"]
        groups[number] = group
        assert learner.current() == ("a" if group == "control" else "b")
        learner.complete(learner.current())
        if group == "treatment":
            assert learner.current() == "c"
            assert learner.state.routes["route[1]"].case == "treated"
    assert set(groups.values()) == {"control", "treatment"}


def test_split_weights_are_respected_and_do_not_use_the_salted_hash() -> None:
    spec = SplitSpec.model_validate(
        {"id": "pilot", "variants": {"control": {"weight": 1}, "treatment": {"weight": 3}}}
    )
    counts = Counter(split.split_variant(f"k{n}", "design", spec) for n in range(4000))
    assert 0.70 < counts["treatment"] / 4000 < 0.80
    # A fixed answer: sha256-based, the same in every process and on every machine.
    assert split.split_variant("learner-1", "constructs", spec) == split.split_variant(
        "learner-1", "constructs", spec
    )
    assert [split.split_variant(f"k{n}", "design", spec) for n in range(6)] == [
        split.split_variant(f"k{n}", "design", spec) for n in range(6)
    ]


# --- spaced review ----------------------------------------------------------------------------------------

REVIEW = """\
- quiz
- a
- b
- review: {activity: review-quiz, of: quiz, after: 2d}
- c
"""


def test_a_due_review_interrupts_at_the_next_launch_and_the_route_resumes() -> None:
    learner = start(build(REVIEW))
    learner.complete("quiz", 1.0)
    assert learner.current() == "a"
    learner.wait(days=3)
    learner.launch()
    assert learner.current() == "review-quiz"
    assert learner.decision.reason == "review"  # type: ignore[union-attr]
    learner.complete("review-quiz", 1.0)
    assert learner.current() == "a"
    assert learner.decision.resumed  # type: ignore[union-attr]
    learner.complete("a")
    learner.complete("b")
    assert learner.current() == "c"  # the review step is already done
    assert learner.state.reviews == {"route[3]": "done"}


def test_a_review_becomes_due_between_activities() -> None:
    learner = start(build(REVIEW))
    learner.complete("quiz", 1.0)
    learner.wait(days=2)
    learner.complete("a")
    assert learner.current() == "review-quiz"


def test_a_review_is_not_offered_in_the_middle_of_an_activity() -> None:
    learner = start(
        build("- quiz\n- exam\n- review: {activity: review-quiz, of: quiz, after: 1h}\n")
    )
    learner.complete("quiz", 1.0)
    learner.wait(hours=2)
    learner.send(Answered(at=learner.now, activity="exam", question="e1", choice="6", correct=True))
    assert learner.current() == "exam"


def test_reaching_the_review_step_before_it_is_due_skips_it() -> None:
    learner = start(build(REVIEW))
    learner.complete("quiz", 1.0)
    learner.complete("a")
    learner.complete("b")
    assert learner.current() == "c"
    assert learner.state.reviews == {"route[3]": "skipped"}
    learner.wait(days=5)
    learner.launch()
    assert learner.current() == "c"


def test_reaching_the_review_step_when_due_offers_it_there() -> None:
    learner = start(build(REVIEW))
    learner.complete("quiz", 1.0)
    learner.complete("a")
    learner.wait(days=2)
    learner.send(Completed(at=learner.now, activity="b"))
    assert learner.current() == "review-quiz"
    learner.complete("review-quiz", 0.0)
    assert learner.current() == "c"


# --- completion and grade ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion, grade, score, passed, satisfied, expected_grade",
    [
        ("{move_on: completed}", "progress", 0.0, None, True, 1.0),
        ("{move_on: passed, passed_when: quiz.score >= 0.5}", "quiz.score", 0.5, True, True, 0.5),
        ("{move_on: passed, passed_when: quiz.score >= 0.5}", "quiz.score", 0.0, False, False, 0.0),
        ("{move_on: completed-or-passed, passed_when: quiz.passed}", None, 0.0, True, True, None),
        ("{move_on: mastery}", "mastery", 0.0, None, False, None),
    ],
)
def test_design_completion_and_grade(
    completion: str,
    grade: str | None,
    score: float,
    passed: bool | None,
    satisfied: bool,
    expected_grade: float | None,
) -> None:
    extra = f"completion: {completion}\n" + (f"grade: {grade}\n" if grade else "")
    learner = start(build("- quiz\n", extra=extra))
    learner.answer("quiz", right=round(score * 2))
    decision = learner.decision
    assert isinstance(decision, DesignCompleted)
    assert decision.passed is passed
    assert decision.satisfied is satisfied
    if grade == "mastery":
        assert decision.grade is not None and decision.grade < 0.5
        assert "Some skills are not mastered yet" in decision.explanation.learner_text
    else:
        assert decision.grade == expected_grade


def test_mastery_completion_is_satisfied_once_every_skill_is_mastered() -> None:
    route = "- remediate: {check: quiz, lesson: remedial, below: 1.0, max: 5}\n"
    learner = start(build(route, extra="completion: {move_on: mastery}\ngrade: mastery\n"))
    learner.answer("quiz", right=2)
    learner.complete("remedial")
    learner.answer("quiz", right=2)
    decision = learner.decision
    assert isinstance(decision, DesignCompleted)
    assert learner.state.mastery["sums"] >= 0.85
    assert decision.satisfied
    assert "You have mastered every skill." in decision.explanation.learner_text


def test_progress_grade_grows_along_the_route() -> None:
    learner = start(build("- a\n- b\n- c\n- d\n", extra="grade: progress\n"))
    grades = [learner.decision.grade]
    for activity in ("a", "b", "c", "d"):
        grades.append(learner.complete(activity).grade)
    assert grades == sorted(grades) and grades[0] == 0.0 and grades[-1] == 1.0


# --- instructor overrides and reset --------------------------------------------------------------------------


def test_an_override_to_a_route_moves_the_learner_and_is_explained() -> None:
    learner = start(build(BRANCH), age="12")
    learner.override(route="adult", reason="placed by interview")
    assert learner.current() == "b"
    assert learner.decision.explanation.learner_text == (
        "Your instructor moved you to the adult route: placed by interview. Next: Beta."
    )
    learner.complete("b")
    assert learner.current() == "d"
    assert "last override by ms-lee" in learner.decision.explanation.instructor_detail
    assert learner.state.routes["route[0]"].by == "ms-lee"


def test_an_override_to_an_activity_outside_the_route_is_done_then_the_route_resumes() -> None:
    learner = start(build("- a\n- b\n"))
    learner.override(activity="support", reason="extra practice")
    assert learner.current() == "support"
    assert learner.decision.explanation.learner_text.startswith(
        "Your instructor sent you to Support: extra practice."
    )
    learner.complete("support")
    assert learner.current() == "a"


def test_an_override_to_a_route_activity_moves_the_position() -> None:
    learner = start(build("- a\n- b\n- c\n"))
    learner.override(activity="c")
    assert learner.current() == "c"
    decision = learner.complete("c")
    assert isinstance(decision, DesignCompleted)


def test_an_override_naming_nothing_known_is_refused() -> None:
    learner = start(build(BRANCH), age="12")
    with pytest.raises(EngineError, match="no branch case named 'elders'"):
        learner.override(route="elders")
    with pytest.raises(EngineError, match="unknown activity 'zzz'"):
        learner.override(activity="zzz")


def test_reset_starts_the_route_again_but_keeps_attributes_and_groups() -> None:
    learner = start(build(SPLIT), age="12")
    learner.complete(learner.current())
    groups = dict(learner.state.groups)
    learner.reset()
    assert learner.state.outcomes == {}
    assert learner.state.groups == groups
    assert learner.state.attributes == {"age": 12.0}
    assert learner.offered()[-1] in {"a", "b"}


# --- versions ---------------------------------------------------------------------------------------------------

MIGRATIONS = """\
migrations:
  - from_version: 1
    activities: {b: c}
"""


def test_a_learner_stays_on_their_version_unless_the_new_one_maps_their_activity() -> None:
    v1 = build("- a\n- b\n- d\n")
    v2 = build("- a\n- c\n- d\n", extra=MIGRATIONS, version=2)
    learner = start(v1)
    assert migration.migrate(learner.state, v2, T0) is None  # at 'a': not covered
    with pytest.raises(EngineError, match="not 'constructs' version 2"):
        engine.decide(v2, learner.state, None, T0, learner_key="learner-1")
    learner.complete("a")
    moved = migration.migrate(learner.state, v2, T0)
    assert moved is not None
    state, event = moved
    assert isinstance(event, Migrated)
    assert (event.from_version, event.to_version, event.activity) == (1, 2, "c")
    assert state.version == 2
    state, decision = engine.decide(v2, state, None, T0, learner_key="learner-1")
    assert isinstance(decision, NextActivity) and decision.activity == "c"
    # The log replays across versions.
    replayed, again = engine.replay(
        {1: v1, 2: v2}, [*learner.events, event], learner_key="learner-1"
    )
    assert replayed.version == 2
    assert isinstance(again, NextActivity) and again.activity == "c"


def test_replay_without_the_version_the_log_moves_to_is_refused() -> None:
    v1 = build("- a\n- b\n")
    learner = start(v1)
    event = Migrated(at=T0, from_version=1, to_version=2, activity="c")
    with pytest.raises(EngineError, match="version 2, which is not given"):
        engine.replay(v1, [*learner.events, event], learner_key="learner-1")
    with pytest.raises(EngineError, match="the event log is empty"):
        engine.replay(v1, [], learner_key="learner-1")


@pytest.mark.parametrize(
    "move_on, offered",
    [
        ("completed", ["exam", "a"]),
        ("completed-or-passed", ["exam", "a"]),
        ("passed", ["exam", "exam", "a"]),
        ("completed-and-passed", ["exam", "exam", "a"]),
        ("not-applicable", ["a"]),
    ],
)
def test_each_activity_move_on_rule(move_on: str, offered: list[str]) -> None:
    activities = ACTIVITIES.replace(
        "  pass_mark: 0.5\n", f"  pass_mark: 0.5\n  move_on: {move_on}\n"
    )
    learner = start(build("- exam\n- a\n", activities=activities))
    if learner.current() == "exam":
        learner.complete("exam", 0.0)  # a fail
    if learner.current() == "exam":
        learner.complete("exam", 1.0)  # then a pass
    assert learner.offered() == offered
    assert learner.current() == "a"


def test_an_override_to_a_check_without_attempts_left_is_refused() -> None:
    learner = start(build("- exam\n- a\n"))
    learner.complete("exam", 0.0)
    learner.complete("exam", 0.0)
    assert learner.current() == "a"
    with pytest.raises(EngineError, match="no attempts left at 'exam'"):
        learner.override(activity="exam")


def test_an_override_into_another_case_puts_the_learner_on_that_route() -> None:
    learner = start(build(BRANCH), age="12")
    assert learner.state.routes["route[0]"].case == "young"
    learner.override(activity="b", reason="placed by interview")
    assert learner.current() == "b"
    taken = learner.state.routes["route[0]"]
    assert (taken.case, taken.by, taken.reason) == ("adult", "ms-lee", "placed by interview")
    learner.complete("b")
    assert learner.decision.explanation.learner_text == (
        "Next: Delta."  # after the branch: no route sentence
    )
