"""The simulator: synthetic learners (personas) run through the real engine, before any real one.

A personas file (YAML) describes kinds of learners::

    personas:
      ana:
        description: Never programmed; here out of interest
        weight: 2                      # how common, relative to the others
        attributes:                    # a fixed value, or a distribution over values
          prior_programming: none
          goal: {interest: 0.7, academic: 0.3}
        launch: [locale]               # attributes the launch gives (default: those not asked)
        correct: {variables: 0.9}      # P(right answer) per skill
        default_correct: 0.7           # for skills not listed and questions without a skill
        learning: 0.1                  # added to P(right) at each new attempt of a check
        scores: {diagnostic: [0.17]}   # exact scores per attempt (the last one repeats)
        choices: {elective: {elective-games: 3, elective-web: 1}}   # preferences (weights)
        pauses: [{after: loops-check, days: 8}]                       # days away, then relaunch
        minutes_factor: 1.2            # slower (>1) or faster (<1) than the activities' minutes

``simulate`` draws learners from the personas with a seeded ``random.Random``, drives each one
through ``engine.decide`` on a simulated clock, and reports the share of learners per route, the
reach of each activity, the remediation load, completion, pass and time to complete. Answers and
starts are folded with ``learner.apply``: they never move the route (see ``core/engine.py``), so
calling the engine for them would only repeat the same decision.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adaptive_lti.core import engine
from adaptive_lti.core import learner as model
from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.design import (
    AttributeSource,
    AttributeType,
    Branch,
    Check,
    Choose,
    Remediate,
    Split,
)
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.events import (
    Answered,
    AttributeValue,
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Started,
)
from adaptive_lti.core.explanation import path_text

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Pause(_Strict):
    after: str  # an activity: the learner goes away once they complete it
    days: float = Field(gt=0, le=3650)


class Persona(_Strict):
    description: str = ""
    weight: float = Field(default=1.0, gt=0)
    attributes: dict[str, AttributeValue | dict[str, Annotated[float, Field(ge=0)]]] = {}
    launch: tuple[str, ...] | None = None
    correct: dict[str, Fraction] = {}
    default_correct: Fraction = 0.7
    learning: Fraction = 0.0
    scores: dict[str, tuple[Fraction, ...]] = {}
    choices: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = {}
    pauses: tuple[Pause, ...] = ()
    minutes_factor: float = Field(default=1.0, gt=0, le=100)


class PersonasFile(_Strict):
    personas: dict[str, Persona] = Field(min_length=1)


class PersonaError(InvalidInputError):
    """A personas file is malformed or does not fit the design it is simulated against."""


def parse_personas(text: str, filename: str = "<personas>") -> PersonasFile:
    """Read a personas file; every problem is reported with where it is and what to do."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise PersonaError(
            f"{where}: not valid YAML ({error.problem})",
            hint="check the indentation and quoting near that line",
        ) from None
    except yaml.YAMLError as error:
        raise PersonaError(f"{filename}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise PersonaError(
            f"{filename}: a personas file is a mapping with a 'personas' key",
            hint="start it with 'personas:' and one entry per persona",
        )
    _name_boolean_keys(data)
    try:
        return PersonasFile.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            lines.append(f"{filename}: {where}: {problem['msg']}")
        raise PersonaError(
            "\n".join(lines),
            hint="see the personas format in the designers guide (docs/designers/simulator.md)",
        ) from None


def _name_boolean_keys(data: dict[Any, Any]) -> None:
    """YAML reads ``{true: 0.7, false: 0.3}`` with boolean keys: name them "true"/"false"."""
    personas = data.get("personas")
    if not isinstance(personas, dict):
        return
    for persona in personas.values():
        attributes = persona.get("attributes") if isinstance(persona, dict) else None
        if not isinstance(attributes, dict):
            continue
        for name, value in attributes.items():
            if isinstance(value, dict):
                attributes[name] = {
                    (str(key).lower() if isinstance(key, bool) else key): weight
                    for key, weight in value.items()
                }


def check_personas(design: CompiledDesign, personas: PersonasFile) -> list[str]:
    """Problems between the personas and the design (unknown names, values out of domain)."""
    spec = design.design
    choices = {
        step.choose.id: step.choose
        for _, step in iter_steps(spec.route, ("route",))
        if isinstance(step, Choose)
    }
    problems: list[str] = []
    for name, persona in personas.personas.items():
        where = f"personas.{name}"
        for attribute_id, value in persona.attributes.items():
            attribute = spec.attributes.get(attribute_id)
            if attribute is None:
                problems.append(f"{where}.attributes: the design has no attribute '{attribute_id}'")
                continue
            candidates = value.keys() if isinstance(value, dict) else [value]
            for candidate in candidates:
                if model.coerce_attribute(attribute, candidate) is None:
                    problems.append(
                        f"{where}.attributes.{attribute_id}: {candidate!r} is not a value of "
                        f"'{attribute_id}'"
                    )
            if isinstance(value, dict) and not sum(value.values()) > 0:
                problems.append(f"{where}.attributes.{attribute_id}: the weights add up to 0")
        for attribute_id in persona.launch or ():
            if attribute_id not in spec.attributes:
                problems.append(f"{where}.launch: the design has no attribute '{attribute_id}'")
        for skill in persona.correct:
            if skill not in spec.skills:
                problems.append(f"{where}.correct: the design has no skill '{skill}'")
        for activity_id in persona.scores:
            if not isinstance(spec.activities.get(activity_id), Check):
                problems.append(f"{where}.scores: '{activity_id}' is not a check of the design")
        for pause in persona.pauses:
            if pause.after not in spec.activities:
                problems.append(f"{where}.pauses: the design has no activity '{pause.after}'")
        for choice_id, preferences in persona.choices.items():
            choice = choices.get(choice_id)
            if choice is None:
                problems.append(f"{where}.choices: the design has no choice '{choice_id}'")
                continue
            for activity_id in preferences:
                if activity_id not in choice.from_:
                    problems.append(
                        f"{where}.choices.{choice_id}: '{activity_id}' is not one of "
                        f"{', '.join(choice.from_)}"
                    )
    return problems


def load_personas(design: CompiledDesign, text: str, filename: str = "<personas>") -> PersonasFile:
    personas = parse_personas(text, filename)
    problems = check_personas(design, personas)
    if problems:
        raise PersonaError(
            f"{filename}: " + "; ".join(problems),
            hint="use the names and values the design declares",
        )
    return personas


# --- one learner -------------------------------------------------------------------------------


@dataclass
class LearnerRun:
    """What happened to one synthetic learner."""

    persona: str
    learner_key: str
    attributes: dict[str, AttributeValue]
    offered: list[str] = field(default_factory=list)  # activities, in the order first sent
    decisions: list[engine.Decision] = field(default_factory=list)  # kept when asked
    events: list[Event] = field(default_factory=list)  # kept when asked
    minutes: float = 0.0  # time spent on activities
    finished: bool = False
    passed: bool | None = None
    satisfied: bool = False
    grade: float | None = None
    stuck: bool = False  # stopped by the action cap (a route that never ends for this learner)
    state: model.LearnerState | None = None
    elapsed: timedelta = timedelta(0)


def _draw(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def _attributes(
    design: CompiledDesign, persona: Persona, rng: random.Random
) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {}
    for attribute_id, attribute in design.design.attributes.items():
        given = persona.attributes.get(attribute_id)
        if isinstance(given, dict):
            values[attribute_id] = _draw(rng, given)
        elif given is not None:
            values[attribute_id] = given
        elif attribute.type is AttributeType.choice and attribute.values:
            values[attribute_id] = rng.choice(attribute.values)
        elif attribute.type is AttributeType.number:
            low = attribute.minimum if attribute.minimum is not None else 0.0
            high = attribute.maximum if attribute.maximum is not None else low + 10.0
            values[attribute_id] = round(rng.uniform(low, high), 2)
        elif attribute.type is AttributeType.boolean:
            values[attribute_id] = rng.random() < 0.5
        else:
            values[attribute_id] = "en" if attribute_id == "locale" else "text"
    return values


def _launch_event(
    design: CompiledDesign,
    persona: Persona,
    attributes: Mapping[str, AttributeValue],
    at: datetime,
) -> Launched:
    custom: dict[str, str] = {}
    fields: dict[str, str] = {}
    role: str | None = None
    for attribute_id, attribute in design.design.attributes.items():
        launched = (
            attribute_id in persona.launch
            if persona.launch is not None
            else AttributeSource.intake not in attribute.sources
        )
        if not launched:
            continue
        key = attribute.key or attribute_id
        value = attributes[attribute_id]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        for source in attribute.sources:
            if source is AttributeSource.custom:
                custom[key] = text
                break
            if source is AttributeSource.launch:
                fields[key] = text
                break
            if source is AttributeSource.role:
                role = text
                break
    return Launched(at=at, custom=custom, launch=fields, role=role)


def run_learner(
    design: CompiledDesign,
    name: str,
    persona: Persona,
    rng: random.Random,
    *,
    learner_key: str,
    start: datetime,
    keep_history: bool = False,
    explain: bool = True,
    max_actions: int = 500,
) -> LearnerRun:
    """Drive one synthetic learner through the engine until the design is completed."""
    attributes = _attributes(design, persona, rng)
    run = LearnerRun(persona=name, learner_key=learner_key, attributes=attributes)
    spec = design.design
    now = start
    state = engine.start(design)
    pauses = {pause.after: pause.days for pause in persona.pauses}

    def decide(event: Event) -> engine.Decision:
        nonlocal state
        state, decision = engine.decide(
            design, state, event, event.at, learner_key=learner_key, explain=explain
        )
        if keep_history:
            run.events.append(event)
            run.decisions.append(decision)
        return decision

    def fold(event: Event) -> None:
        nonlocal state
        state = model.apply(spec, state, event)
        if keep_history:
            run.events.append(event)

    decision = decide(_launch_event(design, persona, attributes, now))
    for _ in range(max_actions):
        if isinstance(decision, engine.DesignCompleted):
            run.finished, run.passed, run.satisfied = True, decision.passed, decision.satisfied
            run.grade = decision.grade
            break
        if isinstance(decision, engine.NeedsInput):
            run.offered.append(decision.activity)
            answers = {q.attribute: attributes[q.attribute] for q in decision.questions}
            decision = decide(IntakeAnswered(at=now, activity=decision.activity, answers=answers))
            continue
        if isinstance(decision, engine.ChoiceOffered):
            preferences = persona.choices.get(decision.choice)
            pool = {
                option.activity: preferences.get(option.activity, 0.0) if preferences else 1.0
                for option in decision.options
            }
            fewest = max(decision.least, min(1, decision.most))
            count = rng.randint(fewest, max(fewest, decision.most))
            picked: list[str] = []
            while len(picked) < count and any(weight > 0 for weight in pool.values()):
                pick = _draw(rng, pool)
                picked.append(pick)
                pool[pick] = 0.0
            for option in list(pool)[: count - len(picked)]:  # preferences ran out: take in order
                if option not in picked:
                    picked.append(option)
            decision = decide(Chose(at=now, choice=decision.choice, picked=tuple(picked)))
            continue
        assert isinstance(decision, engine.NextActivity)
        activity_id = decision.activity
        activity = spec.activities[activity_id]
        if not decision.resumed or not run.offered or run.offered[-1] != activity_id:
            run.offered.append(activity_id)
        minutes = (activity.minutes if activity.minutes is not None else 10.0) * (
            persona.minutes_factor
        )
        run.minutes += minutes
        if isinstance(activity, Check):
            fold(Started(at=now, activity=activity_id))
            now += timedelta(minutes=minutes)
            scripted = persona.scores.get(activity_id)
            questions = activity.questions
            if scripted:
                target = scripted[min(decision.attempt, len(scripted)) - 1]
                right = round(target * len(questions))
                outcomes = [index < right for index in range(len(questions))]
            else:
                outcomes = []
                for question in questions:
                    chance = persona.correct.get(question.skill or "", persona.default_correct)
                    chance = min(chance + persona.learning * (decision.attempt - 1), 0.99)
                    outcomes.append(rng.random() < chance)
            for question, correct in zip(questions, outcomes, strict=True):
                first, second = question.choices[0], question.choices[1]
                wrong = second if first == question.answer else first
                fold(
                    Answered(
                        at=now,
                        activity=activity_id,
                        question=question.id,
                        choice=question.answer if correct else wrong,
                        correct=correct,
                    )
                )
            decision = decide(Completed(at=now, activity=activity_id))
        else:
            now += timedelta(minutes=minutes)
            decision = decide(Completed(at=now, activity=activity_id))
        days = pauses.pop(activity_id, None)
        if days is not None and not isinstance(decision, engine.DesignCompleted):
            now += timedelta(days=days)
            decision = decide(Launched(at=now))
    else:
        run.stuck = True
    run.state = state
    run.elapsed = now - start
    return run


# --- many learners -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LearnerRecord:
    """The summary of one simulated learner (small and picklable, so runs can be split up)."""

    number: int
    persona: str
    routes: tuple[tuple[str, str], ...]  # (branch path, case name)
    groups: tuple[tuple[str, str], ...]
    choices: tuple[tuple[str, tuple[str, ...]], ...]
    offered: frozenset[str]
    remediation: tuple[tuple[str, int], ...]
    flags: tuple[str, ...]
    finished: bool
    passed: bool | None
    satisfied: bool
    stuck: bool
    minutes: float
    days: float


def simulate_learner(
    design: CompiledDesign,
    personas: PersonasFile,
    *,
    seed: int,
    number: int,
    start: datetime,
) -> LearnerRecord:
    """Learner ``number`` of a run seeded with ``seed``: depends on nothing else, in any process."""
    rng = random.Random(seed * 1_000_003 + number)  # noqa: S311 - simulation, not security
    names = list(personas.personas)
    name = rng.choices(names, weights=[personas.personas[n].weight for n in names])[0]
    run = run_learner(
        design,
        name,
        personas.personas[name],
        rng,
        learner_key=f"simulated-{seed}-{number}",
        start=start,
        explain=False,
    )
    state = run.state
    assert state is not None
    return LearnerRecord(
        number=number,
        persona=name,
        routes=tuple((path, taken.case) for path, taken in state.routes.items()),
        groups=tuple(state.groups.items()),
        choices=tuple(state.choices.items()),
        offered=frozenset(run.offered),
        remediation=tuple(state.remediation.items()),
        flags=tuple(state.flags),
        finished=run.finished,
        passed=run.passed,
        satisfied=run.satisfied,
        stuck=run.stuck,
        minutes=run.minutes,
        days=run.elapsed.total_seconds() / 86400,
    )


@dataclass(frozen=True)
class Share:
    name: str
    count: int
    share: float


@dataclass(frozen=True)
class Shares:
    name: str  # a branch step's path ("route[2]"), a split id or a choice id
    items: tuple[Share, ...]  # "(not reached)" counts the learners who never got there


@dataclass(frozen=True)
class ActivityReach:
    activity: str
    title: str
    count: int
    share: float


@dataclass(frozen=True)
class PersonaSummary:
    persona: str
    learners: int
    completion_rate: float
    pass_rate: float | None
    routes: tuple[Share, ...]  # the route names the learners took, joined by " > "


@dataclass(frozen=True)
class SimulationReport:
    design: str
    version: int
    learners: int
    seed: int
    routes: tuple[Shares, ...]  # per branch: the share of learners on each case
    groups: tuple[Shares, ...]  # per split: the share in each variant
    choices: tuple[Shares, ...]  # per choice: the share of learners who picked each activity
    reach: tuple[ActivityReach, ...]  # share of learners sent to each activity at least once
    remediation_rounds_per_learner: float
    remediation_by_step: tuple[Share, ...]  # remedial rounds per learner at each remediate step
    flags: tuple[Share, ...]  # share of learners flagged, per flag
    completion_rate: float
    pass_rate: float | None  # None when the design has no passed_when
    satisfied_rate: float
    stuck_rate: float  # learners stopped by the action cap (their route never ended)
    minutes_mean: float | None  # active minutes of the learners who finished
    minutes_median: float | None
    minutes_p90: float | None
    days_mean: float | None  # calendar days from first launch to the end, pauses included
    personas: tuple[PersonaSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        def convert(value: Any) -> Any:
            if hasattr(value, "__dataclass_fields__"):
                return {key: convert(getattr(value, key)) for key in value.__dataclass_fields__}
            if isinstance(value, tuple | list):
                return [convert(item) for item in value]
            return value

        result: dict[str, Any] = convert(self)
        return result


def _shares(counter: Counter[str], total: int) -> tuple[Share, ...]:
    return tuple(
        Share(name, count, round(count / total, 4) if total else 0.0)
        for name, count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarise(
    design: CompiledDesign,
    personas: PersonasFile,
    records: list[LearnerRecord],
    *,
    seed: int,
) -> SimulationReport:
    """Aggregate learner records into the report (records may come from several processes)."""
    learners = len(records)
    if learners == 0:
        raise PersonaError("simulate at least one learner", hint="e.g. -n 1000")
    records = sorted(records, key=lambda record: record.number)
    steps = list(iter_steps(design.design.route, ("route",)))
    branch_paths = [path_text(path) for path, step in steps if isinstance(step, Branch)]
    split_ids = [step.split.id for _, step in steps if isinstance(step, Split)]
    choice_ids = [step.choose.id for _, step in steps if isinstance(step, Choose)]
    route_counts: dict[str, Counter[str]] = {path: Counter() for path in branch_paths}
    group_counts: dict[str, Counter[str]] = {split: Counter() for split in split_ids}
    choice_counts: dict[str, Counter[str]] = {choice: Counter() for choice in choice_ids}
    reach: Counter[str] = Counter()
    rounds_by_step: Counter[str] = Counter()
    # Remediation steps are shown as "<check> at <path>": a path alone means little to a designer.
    remediate_names = {
        path_text(path): f"{step.remediate.check} at {path_text(path)}"
        for path, step in steps
        if isinstance(step, Remediate)
    }
    flags: Counter[str] = Counter()
    minutes: list[float] = []
    days: list[float] = []
    by_persona: dict[str, list[LearnerRecord]] = defaultdict(list)
    for record in records:
        routes, groups = dict(record.routes), dict(record.groups)
        for path in branch_paths:
            route_counts[path][routes.get(path, "(not reached)")] += 1
        for split in split_ids:
            group_counts[split][groups.get(split, "(not reached)")] += 1
        chosen = dict(record.choices)
        for choice in choice_ids:
            picked = chosen.get(choice)
            choice_counts[choice].update(picked if picked is not None else ["(not reached)"])
        reach.update(record.offered)
        for step, rounds in record.remediation:
            rounds_by_step[remediate_names.get(step, step)] += rounds
        flags.update(record.flags)
        if record.finished:
            minutes.append(record.minutes)
            days.append(record.days)
        by_persona[record.persona].append(record)
    has_pass = design.design.completion.passed_when is not None

    def rate(predicate: Callable[[LearnerRecord], bool], group: list[LearnerRecord]) -> float:
        return round(sum(1 for record in group if predicate(record)) / len(group), 4)

    persona_summaries = []
    for name in personas.personas:
        group = by_persona.get(name)
        if not group:
            continue
        labels = Counter(
            " > ".join(case for _, case in record.routes) or "(no branch)" for record in group
        )
        persona_summaries.append(
            PersonaSummary(
                persona=name,
                learners=len(group),
                completion_rate=rate(lambda record: record.finished, group),
                pass_rate=rate(lambda record: record.passed is True, group) if has_pass else None,
                routes=_shares(labels, len(group)),
            )
        )
    activities = design.design.activities
    return SimulationReport(
        design=design.id,
        version=design.version,
        learners=learners,
        seed=seed,
        routes=tuple(Shares(p, _shares(route_counts[p], learners)) for p in branch_paths),
        groups=tuple(Shares(s, _shares(group_counts[s], learners)) for s in split_ids),
        choices=tuple(Shares(c, _shares(choice_counts[c], learners)) for c in choice_ids),
        reach=tuple(
            ActivityReach(a, activities[a].title, reach[a], round(reach[a] / learners, 4))
            for a in activities
        ),
        remediation_rounds_per_learner=round(sum(rounds_by_step.values()) / learners, 4),
        remediation_by_step=tuple(
            Share(step, count, round(count / learners, 4))
            for step, count in sorted(rounds_by_step.items())
        ),
        flags=_shares(flags, learners),
        completion_rate=rate(lambda record: record.finished, records),
        pass_rate=rate(lambda record: record.passed is True, records) if has_pass else None,
        satisfied_rate=rate(lambda record: record.satisfied, records),
        stuck_rate=rate(lambda record: record.stuck, records),
        minutes_mean=round(statistics.fmean(minutes), 1) if minutes else None,
        minutes_median=round(statistics.median(minutes), 1) if minutes else None,
        minutes_p90=round(_percentile(minutes, 0.9), 1) if minutes else None,
        days_mean=round(statistics.fmean(days), 2) if days else None,
        personas=tuple(persona_summaries),
    )


def simulate(
    design: CompiledDesign,
    personas: PersonasFile,
    *,
    learners: int,
    seed: int,
    start: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Run ``learners`` synthetic learners through ``design`` (in this process) and summarise.

    Learner ``n`` depends only on ``(seed, n)``: the same seed gives the same report, and the
    command line may split the learners over processes (``simulate_learner``) with the same result.
    """
    if learners < 1:
        raise PersonaError("simulate at least one learner", hint="e.g. -n 1000")
    every = max(1, learners // 200)
    records = []
    for number in range(learners):
        records.append(simulate_learner(design, personas, seed=seed, number=number, start=start))
        if progress is not None and (number + 1) % every == 0:
            progress(number + 1, learners)
    return summarise(design, personas, records, seed=seed)
