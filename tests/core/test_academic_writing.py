"""The second example: an experiment, a constrained choice, practice where mastery is low, and
completion by mastery."""

from __future__ import annotations

from pathlib import Path

from adaptive_lti.core import simulate
from adaptive_lti.core.conditions import format_value
from adaptive_lti.core.engine import ChoiceOffered, DesignCompleted, NeedsInput
from adaptive_lti.core.lint import lint
from tests.core.routing import EXAMPLES, T0, Learner, example

DESIGN = example("academic-writing")


def test_the_design_is_clean_for_the_linter() -> None:
    assert [str(problem) for problem in lint(DESIGN)] == []


def begin(key: str, english: bool, right: int) -> Learner:
    learner = Learner(DESIGN, key)
    decision = learner.launch(custom={"discipline": "humanities"})
    assert isinstance(decision, NeedsInput)
    assert [q.attribute for q in decision.questions] == ["english_first_language"]
    learner.intake("start", english_first_language=english)
    learner.answer("writing-sample", right=right)
    return learner


def finish_split(learner: Learner) -> None:
    variant = learner.state.groups["feedback-style"]
    assert (
        learner.current()
        == {"worked-examples": "worked-examples", "peer-review": "peer-review"}[variant]
    )
    learner.complete(learner.current())


def test_a_strong_writer_skips_all_practice_and_completes_by_mastery() -> None:
    learner = begin("strong", english=True, right=6)
    finish_split(learner)
    choice = learner.decision
    assert isinstance(choice, ChoiceOffered)
    assert (choice.least, choice.most) == (1, 2)
    assert [o.activity for o in choice.required] == ["integrity"]
    learner.choose("guides", "style-guide")
    learner.complete("integrity")
    learner.complete("style-guide")
    # The sample gave two right answers per skill: every skill is already mastered.
    assert learner.current() == "reflection"
    assert [learner.state.routes[b].case for b in ("route[5]", "route[6]", "route[7]")] == [
        "thesis mastered",
        "evidence mastered",
        "citation mastered",
    ]
    learner.complete("reflection")
    if learner.state.groups["feedback-style"] == "peer-review":
        learner.complete("peer-review-debrief")
    decision = learner.decision
    assert isinstance(decision, DesignCompleted)
    assert decision.satisfied and decision.passed is None
    assert decision.grade is not None and decision.grade > 0.85
    assert decision.explanation.learner_text.endswith(
        f"You have mastered every skill. Your grade: {format_value(decision.grade)}."
    )


def test_weak_skills_get_practice_and_language_support_is_offered() -> None:
    learner = begin("weak", english=False, right=0)
    finish_split(learner)
    assert learner.current() == "academic-english"
    assert learner.decision.explanation.learner_text.startswith(
        'You are on the language support route because you answered no to "Is English your '
        'first language?". Next: Academic English support'
    )
    learner.complete("academic-english")
    learner.choose("guides", "thesis-guide", "citation-guide")
    for activity in ("integrity", "thesis-guide", "citation-guide"):
        assert learner.current() == activity
        learner.complete(activity)
    assert learner.current() == "thesis-check"
    assert learner.decision.explanation.learner_text == (
        "You are on the thesis practice route because you have not mastered stating a thesis "
        "yet. Next: Thesis practice."
    )


def test_both_experiment_groups_are_used() -> None:
    groups = {begin(f"learner-{n}", True, 6).state.groups["feedback-style"] for n in range(12)}
    assert groups == {"worked-examples", "peer-review"}


def test_its_personas_simulate() -> None:
    personas = simulate.load_personas(
        DESIGN, Path(EXAMPLES / "academic-writing" / "personas.yaml").read_text(encoding="utf-8")
    )
    report = simulate.simulate(DESIGN, personas, learners=200, seed=1, start=T0)
    assert report.completion_rate == 1.0 and report.pass_rate is None
    assert 0.5 < report.satisfied_rate <= 1.0
    (group,) = report.groups
    assert {item.name for item in group.items} == {"worked-examples", "peer-review"}
    (guides,) = report.choices
    assert 200 <= sum(item.count for item in guides.items) <= 400  # one or two picks each
