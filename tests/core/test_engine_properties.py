"""Properties of the engine over random designs and random learners (hypothesis).

- deterministic: replaying the recorded events gives the same state and the same last decision;
- never offers an activity inside a branch case whose condition failed (first match, checked
  against the state the branch was evaluated on), and the learner's place is always inside the
  cases recorded for them;
- no dead state: every decision can be answered, and the route ends within a bound.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_lti.core import engine
from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.design import Branch, Check
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import (
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Overridden,
    Reset,
)
from adaptive_lti.core.explanation import path_text
from adaptive_lti.core.learner import LearnerState, make_lookup
from tests.core.routing import T0, compile_yaml

PAGES = [f"page-{n}" for n in range(6)]
CHECKS = [f"check-{n}" for n in range(4)]
CONDITIONS = [
    'level == "low"',
    'level in ["mid", "high"]',
    "check-0.score >= 0.5",
    "check-1.score < 0.5 and check-0.completed",
    "mastery.skill > 0.5",
    "not check-2.passed",
    "since(check-0) >= 1d",
    'level == "high" or check-3.attempts >= 2',
]


def activities() -> dict[str, Any]:
    result: dict[str, Any] = {
        "intake": {"kind": "intake", "title": "About you", "ask": ["level"]},
    }
    for page in PAGES:
        result[page] = {"kind": "page", "title": page.title(), "body": "text"}
    for index, check in enumerate(CHECKS):
        result[check] = {
            "kind": "check",
            "title": check.title(),
            "questions": [
                {"id": "q1", "prompt": "?", "choices": ["a", "b"], "answer": "a", "skill": "skill"},
                {"id": "q2", "prompt": "?", "choices": ["a", "b"], "answer": "b", "skill": "skill"},
            ],
        }
        if index % 2:  # half the checks must be passed, with a bounded number of attempts
            result[check].update(pass_mark=0.5, max_attempts=2)
    return result


def step_strategy(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(PAGES + CHECKS)
    remediate = st.builds(
        lambda check, lesson, below, rounds, support: {
            "remediate": {
                "check": check,
                "lesson": lesson,
                "below": below,
                "max": rounds,
                **({"support": support, "flag": "needs-help"} if support else {}),
            }
        },
        st.sampled_from(CHECKS),
        st.sampled_from(PAGES),
        st.sampled_from([0.5, 0.75, 1.0]),
        st.integers(1, 2),
        st.none() | st.sampled_from(PAGES),
    )
    choose = st.builds(
        lambda options, exact, required: {
            "choose": {
                "id": f"choice-{abs(hash(tuple(options))) % 1000}",
                "from": options,
                **({"pick": 1} if exact else {"min": 0, "max": 2}),
                **({"required": [required]} if required and required not in options else {}),
            }
        },
        st.lists(st.sampled_from(PAGES), min_size=2, max_size=3, unique=True),
        st.booleans(),
        st.none() | st.sampled_from(PAGES),
    )
    review = st.builds(
        lambda of, activity: {"review": {"activity": activity, "of": of, "after": "1d"}},
        st.sampled_from(CHECKS),
        st.sampled_from(CHECKS),
    )
    if depth <= 0:
        return st.one_of(leaf, remediate, choose, review)
    inner = st.lists(step_strategy(depth - 1), min_size=0, max_size=3)
    branch = st.builds(
        lambda whens, thens, otherwise: {
            "branch": [
                {"name": f"case-{n}", "when": when, "then": then}
                for n, (when, then) in enumerate(zip(whens, thens, strict=False))
            ]
            + ([{"name": "rest", "otherwise": True, "then": thens[-1]}] if otherwise else [])
        },
        st.lists(st.sampled_from(CONDITIONS), min_size=1, max_size=3),
        st.lists(inner, min_size=3, max_size=3),
        st.booleans(),
    )
    split = st.builds(
        lambda a, b, weight: {
            "split": {
                "id": f"split-{depth}",
                "variants": {"x": {"weight": weight, "then": a}, "y": {"then": b}},
            }
        },
        inner,
        inner,
        st.sampled_from([0.5, 1.0, 3.0]),
    )
    return st.one_of(leaf, remediate, choose, review, branch, split)


@st.composite
def designs(draw: st.DrawFn) -> CompiledDesign:
    drawn = draw(st.lists(step_strategy(1), min_size=1, max_size=4))
    # A JSON round trip unshares lists hypothesis reused, so each step is numbered on its own.
    route = ["intake", *json.loads(json.dumps(drawn))]
    # Choice ids must be unique: renumber them in route order.
    counter = iter(range(1000))

    def renumber(steps: list[Any]) -> None:
        for step in steps:
            if isinstance(step, dict) and "choose" in step:
                step["choose"]["id"] = f"choice-{next(counter)}"
            for case in step.get("branch", []) if isinstance(step, dict) else []:
                renumber(case["then"])
            if isinstance(step, dict) and "split" in step:
                for variant in step["split"]["variants"].values():
                    renumber(variant["then"])

    renumber(route)
    # Split ids must be unique too, and a group condition needs its split declared.
    splits = iter(range(1000))

    def rename_splits(steps: list[Any]) -> None:
        for step in steps:
            if isinstance(step, dict) and "split" in step:
                step["split"]["id"] = f"split-{next(splits)}"
                for variant in step["split"]["variants"].values():
                    rename_splits(variant["then"])
            for case in step.get("branch", []) if isinstance(step, dict) else []:
                rename_splits(case["then"])

    rename_splits(route)
    document = {
        "design": "random",
        "title": "Random",
        "attributes": {
            "level": {"type": "choice", "values": ["low", "mid", "high"], "sources": ["intake"]}
        },
        "skills": {"skill": {}},
        "activities": activities(),
        "route": route,
        "completion": {"move_on": "completed-or-passed", "passed_when": "check-1.passed"},
        "grade": "progress",
    }
    return compile_yaml(json.dumps(document))  # JSON is YAML, and has no aliases


def respond(
    design: CompiledDesign, decision: engine.Decision, state: LearnerState, roll: int, now: Any
) -> Event:
    """What a learner does next, steered by ``roll``."""
    if isinstance(decision, engine.NeedsInput):
        return IntakeAnswered(
            at=now,
            activity=decision.activity,
            answers={q.attribute: q.values[roll % len(q.values)] for q in decision.questions},
        )
    if isinstance(decision, engine.ChoiceOffered):
        count = decision.least + roll % (decision.most - decision.least + 1)
        options = [option.activity for option in decision.options]
        start = roll % len(options) if options else 0
        picked = (options[start:] + options[:start])[:count]
        return Chose(at=now, choice=decision.choice, picked=tuple(picked))
    assert isinstance(decision, engine.NextActivity)
    activity = design.activity(decision.activity)
    score = (roll % 3) / 2 if isinstance(activity, Check) else None
    return Completed(at=now, activity=decision.activity, score=score)


def check_branches(
    design: CompiledDesign, before: LearnerState, after: LearnerState, now: Any
) -> None:
    """Cases newly taken are the first whose condition holds on the state they were chosen on."""
    lookup = make_lookup(design.design, after, now)
    for key, taken in after.routes.items():
        if before.routes.get(key) == taken or taken.by is not None:
            continue
        step = next(
            s
            for p, s in iter_steps(design.design.route, ("route",))
            if path_text(p) == key and isinstance(s, Branch)
        )
        for index, case in enumerate(step.branch):
            holds = case.otherwise or design.condition(case.when or "").test(lookup)
            assert holds is (index == taken.index) or (index > taken.index), (key, index)
            if index == taken.index:
                assert holds
                break


def check_place(after: LearnerState) -> None:
    """The learner's place is inside the cases recorded for them, never in another case."""
    if after.cursor is None:
        return
    step = after.cursor.step
    for position, part in enumerate(step):
        if part == "branch":
            taken = after.routes.get(path_text(step[:position]))
            assert taken is not None and step[position + 1] == taken.index, (step, after.routes)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(design=designs(), rolls=st.lists(st.integers(0, 99), max_size=80), key=st.text(max_size=8))
def test_random_learners_on_random_designs(
    design: CompiledDesign, rolls: list[int], key: str
) -> None:
    state = engine.start(design)
    now = T0
    events: list[Event] = [Launched(at=now)]
    state, decision = engine.decide(design, state, events[0], now, learner_key=key)
    for number in range(400):
        if isinstance(decision, engine.DesignCompleted):
            break
        roll = rolls[number] if number < len(rolls) else 99
        if roll % 10 == 0:  # away for two days, then back through the platform
            now += timedelta(days=2)
            event: Event = Launched(at=now)
        elif roll % 13 == 7 and number < 200:  # an instructor sends the learner somewhere
            event = Overridden(at=now, by="teacher", activity=(PAGES + CHECKS)[roll % 10])
        elif roll % 41 == 11 and number < 200:  # an instructor resets their progress
            event = Reset(at=now, by="teacher")
        else:
            now += timedelta(minutes=10)
            event = respond(design, decision, state, roll, now)
        before = state
        try:
            state, decision = engine.decide(design, state, event, now, learner_key=key)
        except EngineError:
            # Only an override to a check without attempts left may be refused here.
            assert isinstance(event, Overridden), event
            continue
        events.append(event)
        check_branches(design, before, state, now)
        check_place(state)
        # Deciding again from the same state and event gives the same answer.
        assert engine.decide(design, before, event, now, learner_key=key) == (state, decision)
    else:
        raise AssertionError(f"no end after 400 actions: {decision.kind}")
    replayed, again = engine.replay(design, events, learner_key=key)
    assert replayed == state
    assert again == decision
    assert decision.grade == 1.0  # "progress" at the end of the route
