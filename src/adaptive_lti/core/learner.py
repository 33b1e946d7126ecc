"""The learner model: what is known about one learner on one design version.

``LearnerState`` is a frozen value, JSON-serialisable (``to_dict`` / ``from_dict``): attributes
(with where each came from), per-activity outcomes, mastery per skill, choices made, split groups,
the routes taken (with the values that chose them), remediation rounds, reviews, flags raised for
instructors, and the learner's place in the route (``cursor``) so that a decision never has to
replay the history.

``apply(design, state, event)`` folds one learner-model event into the state: attributes from a
launch or an intake, answers (one BKT update each), completions (score, attempts, pass). Routing
events (chose, overridden, reset, migrated) and the learner's place in the route are the engine's
business (``core/engine.py``), and so is ``replay``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from adaptive_lti.core import mastery as bkt
from adaptive_lti.core.design import (
    Attribute,
    AttributeSource,
    AttributeType,
    Check,
    Design,
    Intake,
    Question,
)
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import (
    Answered,
    AttributeSet,
    AttributeValue,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Started,
)

# A place in the design document, as in compiled.Path: ("route", 2, "branch", 0, "then", 1).
StepPath = tuple[str | int, ...]
# A condition value as explanations record it (durations in seconds).
Value = float | str | bool | None


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


FrozenModel = TypeVar("FrozenModel", bound=BaseModel)


def replace(value: FrozenModel, changes: Mapping[str, Any]) -> FrozenModel:
    """A copy of a frozen model with some fields changed, without validation.

    ``model_copy(update=...)`` does the same but costs several times more; the engine copies
    the state on every event, so this is on the path of every decision. The values given must
    already be of the fields' types (they come from the engine, never from outside).
    """
    copy = value.__class__.__new__(value.__class__)
    fields = value.__dict__.copy()
    fields.update(changes)
    _set_attribute(copy, "__dict__", fields)
    # Which fields were given explicitly only matters to model_dump(exclude_unset=True).
    _set_attribute(copy, "__pydantic_fields_set__", value.__pydantic_fields_set__)
    _set_attribute(copy, "__pydantic_extra__", None)
    _set_attribute(copy, "__pydantic_private__", None)
    return copy


_set_attribute = object.__setattr__


class Outcome(Frozen):
    """One activity's record. ``score`` is the latest; ``passed`` stays true once reached."""

    score: float | None = None
    best: float | None = None
    attempts: int = 0  # completed submissions
    completed: bool = False
    passed: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    answers: dict[str, bool] = {}  # the current attempt: question id -> right?


class Cursor(Frozen):
    """Where the learner is: a route step, and inside composite steps which part of it."""

    step: StepPath
    # remediate: "check" | "lesson" | "support"; choose: "items"; otherwise "".
    phase: str = ""
    item: int = 0  # choose: index into the required activities followed by the picked ones


OfferReason = Literal[
    "route", "retry", "remediation", "recheck", "support", "review", "choice", "override"
]


class Offer(Frozen):
    """The activity the learner was last sent to; done once ``attempts`` exceeds ``baseline``."""

    activity: str
    baseline: int
    reason: OfferReason = "route"


class RouteTaken(Frozen):
    """A branch case the learner was put on, with the values its condition read then."""

    branch: str  # the branch step's path, e.g. "route[2]"
    case: str  # the case's name (or "case 2")
    index: int
    condition: str | None = None  # None for "otherwise" or an override
    values: dict[str, Value] = {}
    rejected: tuple[tuple[str, str, dict[str, Value]], ...] = ()  # earlier cases: name, when, read
    by: str | None = None  # an instructor, when set by an override
    reason: str = ""


class Interruption(Frozen):
    """An activity taken out of route order: a due review, or one an instructor assigned."""

    kind: Literal["review", "assigned"]
    activity: str
    key: str = ""  # for a review: the review step's path
    baseline: int = 0


class OverrideNote(Frozen):
    by: str
    reason: str
    at: datetime
    target: str  # "activity loops-lesson" or "route foundations"


class LearnerState(Frozen):
    design: str
    version: int
    attributes: dict[str, AttributeValue] = {}
    attribute_sources: dict[str, str] = {}
    outcomes: dict[str, Outcome] = {}
    mastery: dict[str, float] = {}  # P(known) per skill; absent means the skill's prior
    choices: dict[str, tuple[str, ...]] = {}
    groups: dict[str, str] = {}  # split id -> variant
    routes: dict[str, RouteTaken] = {}  # branch path -> the case taken
    remediation: dict[str, int] = {}  # remediate step path -> remedial rounds done
    reviews: dict[str, Literal["done", "skipped"]] = {}  # review step path -> outcome
    flags: dict[str, str] = {}  # flag -> why it was raised (shown to instructors)
    cursor: Cursor | None = None  # None: not started
    offer: Offer | None = None
    interruption: Interruption | None = None
    finished: bool = False
    override: OverrideNote | None = None
    events: int = 0
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnerState:
        return cls.model_validate(data)

    def outcome(self, activity: str) -> Outcome:
        return self.outcomes.get(activity, _NO_OUTCOME)


_NO_OUTCOME = Outcome()


def new_state(design: Design) -> LearnerState:
    return LearnerState(design=design.design, version=design.version)


# --- reading values for conditions ---------------------------------------------------------------

_OUTCOME_FIELDS = ("score", "attempts", "completed", "passed")


def make_lookup(
    design: Design,
    state: LearnerState,
    now: datetime,
    groups: Mapping[str, str] | None = None,
) -> Callable[[str], Value]:
    """The function conditions read names through (see design.py for the names).

    ``groups`` replaces the state's split groups (the engine assigns groups while it walks).
    """
    split_groups = state.groups if groups is None else groups

    def lookup(name: str) -> Value:
        if name in design.attributes:
            value = state.attributes.get(name)
            return design.attributes[name].default if value is None else value
        if name.startswith("since("):
            completed_at = state.outcome(name[6:-1]).completed_at
            return None if completed_at is None else (now - completed_at).total_seconds()
        head, _, tail = name.partition(".")
        if head in design.activities and tail in _OUTCOME_FIELDS:
            outcome = state.outcome(head)
            if tail == "score":
                return outcome.score
            if tail == "attempts":
                return float(outcome.attempts)
            return outcome.completed if tail == "completed" else outcome.passed
        if head == "mastery" and tail in design.skills:
            return state.mastery.get(tail, design.skills[tail].prior)
        if head == "mastered" and tail in design.skills:
            skill = design.skills[tail]
            return bkt.is_mastered(state.mastery.get(tail, skill.prior), skill)
        if head == "group":
            return split_groups.get(tail)
        return None

    return lookup


# --- attribute values ----------------------------------------------------------------------------

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce_attribute(attribute: Attribute, raw: object) -> AttributeValue | None:
    """``raw`` as a value of ``attribute``, or None when it does not fit the attribute's domain."""
    if raw is None:
        return None
    if attribute.type is AttributeType.boolean:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    if attribute.type is AttributeType.number:
        if isinstance(raw, bool):
            return None
        try:
            number = float(raw) if isinstance(raw, int | float | str) else None
        except ValueError:
            return None
        if number is None or number != number:  # NaN
            return None
        if attribute.minimum is not None and number < attribute.minimum:
            return None
        if attribute.maximum is not None and number > attribute.maximum:
            return None
        return number
    text = str(raw).strip()
    if attribute.type is AttributeType.choice:
        values = attribute.values or ()
        if text in values:
            return text
        lowered = {value.lower(): value for value in values}
        return lowered.get(text.lower())
    return text if text else None


def _describe_domain(attribute: Attribute) -> str:
    if attribute.type is AttributeType.choice:
        return "one of " + ", ".join(attribute.values or ())
    if attribute.type is AttributeType.number:
        low = "" if attribute.minimum is None else f" from {attribute.minimum:g}"
        high = "" if attribute.maximum is None else f" to {attribute.maximum:g}"
        return f"a number{low}{high}"
    return "true or false" if attribute.type is AttributeType.boolean else "some text"


def _from_launch(attribute_id: str, attribute: Attribute, event: Launched) -> tuple[Any, str]:
    key = attribute.key or attribute_id
    for source in attribute.sources:
        raw: object = None
        if source is AttributeSource.custom:
            raw = event.custom.get(key)
        elif source is AttributeSource.launch:
            raw = event.launch.get(key)
        elif source is AttributeSource.role:
            raw = event.role
        value = coerce_attribute(attribute, raw)
        if value is not None:
            return value, source.value
    return None, ""


# --- applying learner-model events ---------------------------------------------------------------


def _check(design: Design, activity_id: str) -> Check:
    activity = design.activities.get(activity_id)
    if not isinstance(activity, Check):
        raise EngineError(
            f"'{activity_id}' is not a check of the design '{design.design}'",
            hint="answers and scores are recorded for checks only",
        )
    return activity


def _require_activity(design: Design, activity_id: str) -> None:
    if activity_id not in design.activities:
        raise EngineError(
            f"unknown activity '{activity_id}' in the design '{design.design}' "
            f"version {design.version}",
            hint="the event names an activity this version of the design does not have",
        )


def _question(check: Check, question_id: str, activity_id: str) -> Question:
    for question in check.questions:
        if question.id == question_id:
            return question
    raise EngineError(
        f"the check '{activity_id}' has no question '{question_id}'",
        hint="questions: " + ", ".join(question.id for question in check.questions),
    )


def _refuse_when_out_of_attempts(check: Check, outcome: Outcome, activity_id: str) -> None:
    if check.max_attempts is not None and outcome.attempts >= check.max_attempts:
        raise EngineError(
            f"no attempts left at '{activity_id}' ({check.max_attempts} allowed)",
            hint="an instructor can reset the learner's progress to allow more",
        )


def _launched(design: Design, state: LearnerState, event: Launched) -> dict[str, Any]:
    attributes, sources = dict(state.attributes), dict(state.attribute_sources)
    for attribute_id, attribute in design.attributes.items():
        value, source = _from_launch(attribute_id, attribute, event)
        if value is not None:
            attributes[attribute_id], sources[attribute_id] = value, source
    return {"attributes": attributes, "attribute_sources": sources}


def _attributes_given(
    design: Design, state: LearnerState, event: AttributeSet | IntakeAnswered
) -> dict[str, Any]:
    if isinstance(event, AttributeSet):
        answers: Mapping[str, object] = {event.attribute: event.value}
        source, asked = event.source, tuple(design.attributes)
    else:
        intake = design.activities.get(event.activity)
        if not isinstance(intake, Intake):
            raise EngineError(
                f"'{event.activity}' is not an intake activity of this design",
                hint="intake answers are recorded against the intake that asked them",
            )
        answers, source, asked = event.answers, "intake", intake.ask
    attributes, sources = dict(state.attributes), dict(state.attribute_sources)
    for attribute_id, raw in answers.items():
        if attribute_id not in asked:
            where = (
                "the design has no attribute"
                if isinstance(event, AttributeSet)
                else f"the intake '{event.activity}' does not ask"
            )
            raise EngineError(f"{where} '{attribute_id}'", hint="attributes: " + ", ".join(asked))
        attribute = design.attributes[attribute_id]
        value = coerce_attribute(attribute, raw)
        if value is None:
            raise EngineError(
                f"{raw!r} is not a valid answer for '{attribute_id}'",
                hint=f"give {_describe_domain(attribute)}",
            )
        attributes[attribute_id], sources[attribute_id] = value, source
    return {"attributes": attributes, "attribute_sources": sources}


def _started(design: Design, state: LearnerState, event: Started) -> dict[str, Any]:
    _require_activity(design, event.activity)
    outcome = state.outcome(event.activity)
    return {
        "outcomes": {
            **state.outcomes,
            event.activity: replace(outcome, {"started_at": event.at, "answers": {}}),
        }
    }


def _answered(design: Design, state: LearnerState, event: Answered) -> dict[str, Any]:
    check = _check(design, event.activity)
    question = _question(check, event.question, event.activity)
    outcome = state.outcome(event.activity)
    _refuse_when_out_of_attempts(check, outcome, event.activity)
    changes: dict[str, Any] = {
        "outcomes": {
            **state.outcomes,
            event.activity: replace(
                outcome, {"answers": {**outcome.answers, event.question: event.correct}}
            ),
        }
    }
    if question.skill is not None:
        skill = design.skills[question.skill]
        known = state.mastery.get(question.skill, skill.prior)
        changes["mastery"] = {
            **state.mastery,
            question.skill: bkt.update(known, event.correct, skill),
        }
    return changes


def _completed(design: Design, state: LearnerState, event: Completed) -> dict[str, Any]:
    _require_activity(design, event.activity)
    activity = design.activities[event.activity]
    outcome = state.outcome(event.activity)
    score = event.score
    passed = True
    if isinstance(activity, Check):
        _refuse_when_out_of_attempts(activity, outcome, event.activity)
        if score is None:
            if not outcome.answers:
                raise EngineError(
                    f"the check '{event.activity}' was completed with no score and no answers",
                    hint="record the answers first, or give the score",
                )
            score = sum(outcome.answers.values()) / len(activity.questions)
        passed = activity.pass_mark is None or score >= activity.pass_mark
    best = score if outcome.best is None or (score or 0.0) > outcome.best else outcome.best
    return {
        "outcomes": {
            **state.outcomes,
            event.activity: replace(
                outcome,
                {
                    "score": score,
                    "best": best,
                    "attempts": outcome.attempts + 1,
                    "completed": True,
                    "passed": outcome.passed or passed,
                    "completed_at": event.at,
                    "answers": {},
                },
            ),
        }
    }


# Events that change the learner model, by type; the others (chose, overridden, reset, migrated)
# only count here: the engine applies them to the learner's place in the route.
_APPLY: dict[str, Callable[[Design, LearnerState, Any], dict[str, Any]]] = {
    "launched": _launched,
    "attribute_set": _attributes_given,
    "intake_answered": _attributes_given,
    "started": _started,
    "answered": _answered,
    "completed": _completed,
}


def apply(design: Design, state: LearnerState, event: Event) -> LearnerState:
    """Fold one event into the learner model. Raises ``EngineError`` for an impossible event."""
    changes: dict[str, Any] = {"events": state.events + 1, "updated_at": event.at}
    handler = _APPLY.get(event.type)
    if handler is not None:
        changes.update(handler(design, state, event))
    return replace(state, changes)


def unknown_attributes(state: LearnerState, asked: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(attribute for attribute in asked if attribute not in state.attributes)
