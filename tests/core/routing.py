"""Helpers for engine tests: compile a design from YAML text, and a learner that sends events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adaptive_lti.core import engine
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.design import Check
from adaptive_lti.core.events import (
    Answered,
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Overridden,
    Reset,
    Started,
)
from adaptive_lti.core.learner import LearnerState
from adaptive_lti.core.loader import load_design, load_design_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def compile_yaml(text: str) -> CompiledDesign:
    return load_design(text, "test.yaml")


def example(name: str) -> CompiledDesign:
    return load_design_file(EXAMPLES / name / "design.yaml")


class Learner:
    """Sends events to the engine as a learner would, keeping the log and every decision."""

    def __init__(self, design: CompiledDesign, key: str = "learner-1", at: datetime = T0) -> None:
        self.design = design
        self.key = key
        self.now = at
        self.state: LearnerState = engine.start(design)
        self.events: list[Event] = []
        self.decisions: list[engine.Decision] = []

    @property
    def decision(self) -> engine.Decision:
        return self.decisions[-1]

    def send(self, event: Event) -> engine.Decision:
        self.state, decision = engine.decide(
            self.design, self.state, event, event.at, learner_key=self.key
        )
        self.events.append(event)
        self.decisions.append(decision)
        return decision

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def launch(self, **fields: Any) -> engine.Decision:
        return self.send(Launched(at=self.now, **fields))

    def intake(self, activity: str, **answers: Any) -> engine.Decision:
        return self.send(IntakeAnswered(at=self.now, activity=activity, answers=answers))

    def complete(self, activity: str, score: float | None = None) -> engine.Decision:
        self.wait(minutes=5)
        return self.send(Completed(at=self.now, activity=activity, score=score))

    def answer(self, activity: str, right: int) -> engine.Decision:
        """Start ``activity`` (a check), answer its first ``right`` questions right, complete it."""
        check = self.design.activity(activity)
        assert isinstance(check, Check)
        self.send(Started(at=self.now, activity=activity))
        for index, question in enumerate(check.questions):
            correct = index < right
            self.send(
                Answered(
                    at=self.now,
                    activity=activity,
                    question=question.id,
                    choice=question.answer if correct else "wrong",
                    correct=correct,
                )
            )
        return self.complete(activity)

    def choose(self, choice: str, *picked: str) -> engine.Decision:
        return self.send(Chose(at=self.now, choice=choice, picked=picked))

    def override(self, by: str = "ms-lee", reason: str = "", **target: str) -> engine.Decision:
        return self.send(Overridden(at=self.now, by=by, reason=reason, **target))

    def reset(self, by: str = "ms-lee") -> engine.Decision:
        return self.send(Reset(at=self.now, by=by))

    def offered(self) -> list[str]:
        """Activities the learner was sent to, in order (a resumed activity counts once)."""
        route: list[str] = []
        for decision in self.decisions:
            if isinstance(decision, engine.NextActivity) and not decision.resumed:
                route.append(decision.activity)
        return route

    def current(self) -> str:
        decision = self.decision
        assert isinstance(decision, engine.NextActivity), decision
        return decision.activity
