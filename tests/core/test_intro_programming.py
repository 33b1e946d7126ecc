"""The reference course: every persona of the scenario gets its exact route and explanation.

The personas are the ones in examples/intro-programming/personas.yaml, driven through the real
engine by the simulator's learner (scripted scores, so each always takes the same route).
"""

from __future__ import annotations

import random

import pytest

from adaptive_lti.core import engine, simulate
from adaptive_lti.core.engine import ChoiceOffered, DesignCompleted, NeedsInput, NextActivity
from tests.core.routing import EXAMPLES, T0, Learner, example
from tests.example_routes import FOUNDATIONS, STANDARD

DESIGN = example("intro-programming")
PERSONAS = simulate.load_personas(
    DESIGN, (EXAMPLES / "intro-programming" / "personas.yaml").read_text(encoding="utf-8")
)


def walk(name: str) -> simulate.LearnerRun:
    run = simulate.run_learner(
        DESIGN,
        name,
        PERSONAS.personas[name],
        random.Random(7),
        learner_key=name,
        start=T0,
        keep_history=True,
    )
    assert run.finished and not run.stuck
    return run


def texts(run: simulate.LearnerRun) -> list[str]:
    return [decision.explanation.learner_text for decision in run.decisions]


def first(run: simulate.LearnerRun, activity: str) -> NextActivity:
    for decision in run.decisions:
        if isinstance(decision, NextActivity) and decision.activity == activity:
            return decision
    raise AssertionError(f"{activity} never offered")


def test_ana_goes_through_foundations_then_games_then_the_project() -> None:
    run = walk("ana")
    assert run.offered == [
        "welcome",
        "diagnostic",
        *FOUNDATIONS,
        "elective-games",
        "project",
    ]
    assert first(run, "variables-lesson").explanation.learner_text == (
        "You are on the foundations route because your prior programming experience is none "
        "and your diagnostic score was 0.17 (below 0.5). Next: Variables."
    )
    assert run.passed is True and run.grade == 0.8
    assert run.state is not None and run.state.flags == {}


def test_ben_is_fast_tracked_to_the_electives_and_the_link_tells_his_background() -> None:
    run = walk("ben")
    assert run.offered == ["welcome", "diagnostic", "elective-data", "project"]
    intake = run.decisions[0]
    assert isinstance(intake, NeedsInput)
    # prior_programming came from the Moodle custom parameter: the intake asks only the goal.
    assert [question.attribute for question in intake.questions] == ["goal"]
    choice = next(d for d in run.decisions if isinstance(d, ChoiceOffered))
    assert choice.explanation.learner_text == (
        "You are on the fast track route because your prior programming experience is "
        "experienced and your diagnostic score was 1 (at least 0.8). Choose 1 of: Elective: a "
        "guessing game, Elective: analysing a data file, Elective: your first web page generator."
    )
    assert choice.routes == ("fast track",)
    assert run.state is not None
    assert run.state.attribute_sources == {
        "prior_programming": "custom",
        "locale": "launch",
        "goal": "intake",
    }


def test_chen_takes_the_standard_route_and_is_told_why_the_others_did_not_apply() -> None:
    run = walk("chen")
    assert run.offered == ["welcome", "diagnostic", *STANDARD, "elective-web", "project"]
    assert first(run, "conditionals-lesson").explanation.learner_text == (
        "You are on the standard route because the other routes did not apply (fast track: "
        "your prior programming experience is some, not experienced; foundations: your prior "
        "programming experience is some, not none and your diagnostic score was 0.67 (not "
        "below 0.5)). Next: Conditionals."
    )


def test_dara_gets_two_remedial_rounds_then_support_and_the_instructor_is_told() -> None:
    run = walk("dara")
    assert run.offered == [
        "welcome",
        "diagnostic",
        *FOUNDATIONS,
        "loops-remedial",
        "loops-check",
        "loops-remedial",
        "loops-check",
        "loops-support",
        "elective-games",
        "project",
    ]
    remedial = [
        d for d in run.decisions if isinstance(d, NextActivity) and d.reason == "remediation"
    ]
    assert [d.explanation.learner_text.split(". Next")[0] for d in remedial] == [
        "Your loops check score was 0.33 (below 0.7): work through loops, step by step, then "
        "take the check again (round 1 of 2)",
        "Your loops check score was 0.33 (below 0.7): work through loops, step by step, then "
        "take the check again (round 2 of 2)",
    ]
    support = first(run, "loops-support")
    assert support.reason == "support"
    assert support.flags == ("needs-help",)
    assert support.explanation.learner_text.startswith(
        "Your loops check score was 0.33, still below 0.7 after 2 remedial rounds: your "
        "instructor has been told, so they can help. Next: Support: for and while loops"
    )
    detail = support.explanation.instructor_detail
    assert "loops-check.score 0.33 < 0.7 after 2 round(s) (max); flag 'needs-help' raised" in detail
    assert "needs-help: 'loops-check' below 0.7 after 2 remedial rounds" in detail
    assert run.state is not None and set(run.state.flags) == {"needs-help"}


def test_eve_says_experienced_but_evidence_sends_her_to_foundations() -> None:
    run = walk("eve")
    assert run.offered == ["welcome", "diagnostic", *FOUNDATIONS, "elective-web", "project"]
    lesson = first(run, "variables-lesson")
    assert lesson.explanation.learner_text == (
        "You are on the foundations route because your diagnostic score was 0.33 (below 0.5). "
        "Next: Variables."
    )
    assert lesson.explanation.rule == 'branch case "foundations" of route[2]'
    detail = lesson.explanation.instructor_detail
    assert (
        'branch case "fast track" of route[2] (case 1 of 3): when prior_programming == '
        '"experienced" and diagnostic.score >= 0.8 -> false; read prior_programming = '
        '"experienced", diagnostic.score = 0.33'
    ) in detail
    assert (
        'branch case "foundations" of route[2] (case 2 of 3) fired: when prior_programming == '
        '"none" or diagnostic.score < 0.5 -> true; read prior_programming = "experienced", '
        "diagnostic.score = 0.33"
    ) in detail


def test_femi_returns_after_eight_days_and_reviews_loops_before_the_project() -> None:
    run = walk("femi")
    assert run.offered == [
        "welcome",
        "diagnostic",
        *STANDARD,
        "loops-review",
        "elective-data",
        "project",
    ]
    review = first(run, "loops-review")
    assert review.reason == "review"
    assert review.explanation.learner_text == (
        "It has been 8 days since you completed loops check: a short review now helps you "
        "remember. Next: Loops review."
    )
    assert "since(loops-check) = 8 days >= 7d; 'loops-review' offered" in (
        review.explanation.instructor_detail
    )


def test_a_learner_who_reaches_the_project_within_the_week_skips_the_review() -> None:
    learner = Learner(DESIGN)
    learner.launch(custom={"prior_programming": "some"}, launch={"locale": "en"})
    learner.intake("welcome", goal="academic")
    learner.answer("diagnostic", right=4)
    for activity in ("conditionals-lesson", "loops-lesson"):
        learner.complete(activity)
        learner.answer(activity.replace("lesson", "check"), right=3)
    learner.choose("elective", "elective-games")
    learner.complete("elective-games")
    assert learner.current() == "project"
    assert learner.state.reviews == {"route[4]": "skipped"}
    learner.wait(days=10)
    assert isinstance(learner.launch(), NextActivity)
    assert learner.current() == "project"  # the review step is behind: no review any more


@pytest.mark.parametrize("score, passed", [(0.8, True), (0.4, False)])
def test_the_project_decides_pass_and_grade(score: float, passed: bool) -> None:
    learner = Learner(DESIGN)
    learner.launch(custom={"prior_programming": "experienced"})
    learner.intake("welcome", goal="vocational")
    learner.answer("diagnostic", right=6)
    learner.choose("elective", "elective-web")
    learner.complete("elective-web")
    for _ in range(3 if not passed else 1):
        decision = learner.complete("project", score)
    assert isinstance(decision, DesignCompleted)
    assert decision.passed is passed
    assert decision.satisfied is passed  # completed-and-passed
    assert decision.grade == score
    if not passed:
        retries = [d for d in learner.decisions if getattr(d, "reason", "") == "retry"]
        assert len(retries) == 2  # 3 attempts allowed: two retries, then the route ends
        assert retries[0].explanation.learner_text.startswith(
            "Your project score was 0.4, below the pass mark 0.6: try again."
        )
        assert "but not passed: your project score was 0.4 (not at least 0.6)" in (
            decision.explanation.learner_text
        )


def test_an_unknown_custom_value_falls_back_to_the_intake_question() -> None:
    learner = Learner(DESIGN)
    decision = learner.launch(custom={"prior_programming": "guru"})
    assert isinstance(decision, NeedsInput)
    assert [q.attribute for q in decision.questions] == ["prior_programming", "goal"]
    assert decision.questions[0].question == "How much programming have you done before?"
    assert decision.questions[0].values == ("none", "some", "experienced")


def test_the_state_after_the_whole_course_round_trips_through_json_and_replays() -> None:
    run = walk("dara")
    assert run.state is not None
    data = run.state.to_dict()
    assert engine.LearnerState.from_dict(data) == run.state
    replayed, decision = engine.replay(DESIGN, run.events, learner_key="dara")
    assert replayed == run.state
    assert decision == run.decisions[-1]
