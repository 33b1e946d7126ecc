"""The learner model: BKT mastery, attribute sources, outcomes, and JSON forms of events and state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from adaptive_lti.core import engine, mastery
from adaptive_lti.core.design import Attribute, Skill
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import (
    Answered,
    AttributeSet,
    Chose,
    Completed,
    IntakeAnswered,
    Launched,
    Migrated,
    Overridden,
    Reset,
    Started,
    event_from_dict,
    event_to_dict,
)
from adaptive_lti.core.learner import LearnerState, apply, coerce_attribute, make_lookup
from tests.core.routing import T0, Learner, example

DESIGN = example("intro-programming")

# --- mastery ---------------------------------------------------------------------------------------


def test_bkt_update_matches_the_textbook_formula() -> None:
    skill = Skill(prior=0.3, learn=0.2, guess=0.2, slip=0.1)
    # P(L|right) = 0.3*0.9 / (0.3*0.9 + 0.7*0.2) = 0.27/0.41; then learning: + (1 - p) * 0.2
    posterior = 0.27 / 0.41
    assert mastery.update(0.3, True, skill) == pytest.approx(posterior + (1 - posterior) * 0.2)
    # P(L|wrong) = 0.3*0.1 / (0.3*0.1 + 0.7*0.8) = 0.03/0.59
    posterior = 0.03 / 0.59
    assert mastery.update(0.3, False, skill) == pytest.approx(posterior + (1 - posterior) * 0.2)


def test_bkt_rises_with_right_answers_past_the_threshold_and_falls_with_wrong_ones() -> None:
    skill = Skill()
    known = skill.prior
    steps = 0
    while not mastery.is_mastered(known, skill):
        known = mastery.update(known, True, skill)
        steps += 1
    assert 2 <= steps <= 5 and known >= 0.85
    assert mastery.update(known, False, skill) < known


def test_bkt_with_impossible_evidence_keeps_the_estimate() -> None:
    skill = Skill(prior=0.5, learn=0.0, guess=0.0, slip=0.0)
    assert mastery.update(1.0, False, skill) == 1.0  # "wrong while known" cannot happen here
    assert mastery.update(0.0, True, skill) == 0.0


# --- attributes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribute, raw, expected",
    [
        (Attribute(type="choice", values=("a", "b")), "B", "b"),
        (Attribute(type="choice", values=("a", "b")), "c", None),
        (Attribute(type="number", minimum=0, maximum=10), "7.5", 7.5),
        (Attribute(type="number", minimum=0, maximum=10), "11", None),
        (Attribute(type="number"), "nan", None),
        (Attribute(type="number"), "seven", None),
        (Attribute(type="boolean"), "Yes", True),
        (Attribute(type="boolean"), "0", False),
        (Attribute(type="boolean"), "maybe", None),
        (Attribute(type="text"), "  fr-FR ", "fr-FR"),
        (Attribute(type="text"), "", None),
    ],
)
def test_attribute_values_are_coerced_to_their_domain(
    attribute: Attribute, raw: str, expected: object
) -> None:
    assert coerce_attribute(attribute, raw) == expected


def test_sources_are_tried_in_order_and_a_later_launch_can_tell_more() -> None:
    state = engine.start(DESIGN)
    state = apply(DESIGN.design, state, Launched(at=T0, launch={"locale": "de"}))
    assert state.attributes == {"locale": "de"}
    state = apply(
        DESIGN.design,
        state,
        IntakeAnswered(at=T0, activity="welcome", answers={"prior_programming": "some"}),
    )
    assert state.attribute_sources["prior_programming"] == "intake"
    # The custom parameter comes first in the attribute's sources: it wins when it appears.
    state = apply(
        DESIGN.design, state, Launched(at=T0, custom={"prior_programming": "experienced"})
    )
    assert state.attributes["prior_programming"] == "experienced"
    assert state.attribute_sources["prior_programming"] == "custom"


def test_an_attribute_set_from_an_import_or_outcome_is_type_checked() -> None:
    state = engine.start(DESIGN)
    state = apply(DESIGN.design, state, AttributeSet(at=T0, attribute="goal", value="academic"))
    assert state.attribute_sources == {"goal": "imported"}
    with pytest.raises(EngineError, match="the design has no attribute 'nope'"):
        apply(DESIGN.design, state, AttributeSet(at=T0, attribute="nope", value="x"))
    with pytest.raises(EngineError, match="not a valid answer for 'goal'"):
        apply(DESIGN.design, state, AttributeSet(at=T0, attribute="goal", value="fun"))
    with pytest.raises(EngineError, match="the intake 'welcome' does not ask 'locale'"):
        apply(
            DESIGN.design,
            state,
            IntakeAnswered(at=T0, activity="welcome", answers={"locale": "en"}),
        )
    with pytest.raises(EngineError, match="not an intake activity"):
        apply(
            DESIGN.design,
            state,
            IntakeAnswered(at=T0, activity="diagnostic", answers={"goal": "academic"}),
        )


def test_lookup_reads_every_kind_of_name() -> None:
    learner = Learner(DESIGN)
    learner.launch(custom={"prior_programming": "none"})
    learner.intake("welcome", goal="academic")
    learner.answer("diagnostic", right=3)
    lookup = make_lookup(DESIGN.design, learner.state, learner.now + timedelta(days=2))
    assert lookup("prior_programming") == "none"
    assert lookup("diagnostic.score") == 0.5
    assert lookup("diagnostic.attempts") == 1.0
    assert lookup("diagnostic.completed") is True
    assert lookup("diagnostic.passed") is True  # no pass mark: completed counts as passed
    assert lookup("project.completed") is False
    assert lookup("project.score") is None
    assert lookup("since(diagnostic)") == pytest.approx(2 * 86400)
    assert lookup("since(project)") is None
    assert 0.0 < lookup("mastery.loops") < 1.0  # type: ignore[operator]
    assert lookup("mastered.loops") is False
    assert lookup("group.anything") is None


def test_a_check_completed_without_answers_or_score_is_refused() -> None:
    state = engine.start(DESIGN)
    with pytest.raises(EngineError, match="no score and no answers"):
        apply(DESIGN.design, state, Completed(at=T0, activity="diagnostic"))
    with pytest.raises(EngineError, match="is not a check"):
        apply(
            DESIGN.design,
            state,
            Answered(at=T0, activity="welcome", question="x", choice="y", correct=True),
        )


def test_started_clears_the_answers_of_an_unfinished_attempt() -> None:
    state = engine.start(DESIGN)
    answer = Answered(at=T0, activity="diagnostic", question="d-loops-1", choice="3", correct=True)
    state = apply(DESIGN.design, state, answer)
    assert state.outcome("diagnostic").answers == {"d-loops-1": True}
    state = apply(DESIGN.design, state, Started(at=T0, activity="diagnostic"))
    assert state.outcome("diagnostic").answers == {}
    assert state.outcome("diagnostic").started_at == T0


# --- JSON forms ----------------------------------------------------------------------------------------

EVERY_EVENT = [
    Launched(at=T0, custom={"a": "b"}, launch={"locale": "en"}, role="learner"),
    AttributeSet(at=T0, attribute="goal", value="academic", source="imported"),
    IntakeAnswered(at=T0, activity="welcome", answers={"goal": "academic"}),
    Started(at=T0, activity="diagnostic"),
    Answered(at=T0, activity="diagnostic", question="q", choice="c", correct=False),
    Completed(at=T0, activity="diagnostic", score=0.5),
    Chose(at=T0, choice="elective", picked=("elective-web",)),
    Overridden(at=T0, by="ms-lee", reason="why", route="standard"),
    Reset(at=T0, by="ms-lee"),
    Migrated(at=T0, from_version=1, to_version=2, activity="a"),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda event: event.type)
def test_every_event_round_trips_through_json(event: object) -> None:
    data = event_to_dict(event)  # type: ignore[arg-type]
    assert event_from_dict(json.loads(json.dumps(data))) == event


def test_events_refuse_naive_times_bad_scores_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Completed(at=T0.replace(tzinfo=None), activity="a")
    with pytest.raises(ValidationError):
        Completed(at=T0, activity="a", score=1.5)
    with pytest.raises(ValidationError):
        event_from_dict({"type": "completed", "at": T0.isoformat(), "activity": "a", "x": 1})
    with pytest.raises(ValidationError, match="either an 'activity' or a 'route'"):
        Overridden(at=T0, by="ms-lee", activity="a", route="b")


def test_a_state_mid_route_round_trips_through_json() -> None:
    learner = Learner(DESIGN)
    learner.launch(custom={"prior_programming": "none"})
    learner.intake("welcome", goal="academic")
    learner.answer("diagnostic", right=1)
    learner.complete("variables-lesson")
    learner.answer("variables-check", right=0)
    text = json.dumps(learner.state.to_dict())
    restored = LearnerState.from_dict(json.loads(text))
    assert restored == learner.state
    # Deciding from the restored state gives the same as from the original.
    _, from_restored = engine.decide(DESIGN, restored, None, learner.now, learner_key="k")
    _, from_original = engine.decide(DESIGN, learner.state, None, learner.now, learner_key="k")
    assert from_restored == from_original
    assert engine.DECISION_ADAPTER.validate_json(
        engine.DECISION_ADAPTER.dump_json(from_original)
    ) == (from_original)
