"""The routing engine: from (design version, learner state, new event, now) to a decision.

``decide`` is pure: it folds the event into the learner model (``learner.apply``), then walks the
route from where the learner is (the ``cursor`` kept in the state) to the next thing the learner
must do, and returns the new state with a ``Decision``:

- ``NextActivity`` — do this activity (or continue it),
- ``ChoiceOffered`` — pick activities from a set (a ``choose`` step),
- ``NeedsInput`` — answer intake questions the launch did not answer,
- ``DesignCompleted`` — the route is finished (passed or not, with the grade for the VLE).

Each decision carries an ``Explanation`` (see ``core/explanation.py``). A decision never replays
history: its cost is the route depth plus the conditions it evaluates. ``replay`` rebuilds a
state from the event log, giving the same decisions every time; ``core/migration.py`` moves a
learner to a newer version of the design when that version declares a mapping for where the
learner is.

Here: the decisions, the walk every construct shares (``Walk``: one decision's working copy of
the routing state, offering an activity until it is done, moving along the route, the
explanation), ``decide`` and ``replay``. Each construct's own walking is in ``core/constructs/``,
the index of a design in ``core/route_index.py``, the events that move the route from outside
(a choice, an override, a reset) in ``core/route_events.py``.

When a due spaced review may interrupt: only between activities or at a launch, never while the
learner is answering a check, so that answers and starts never change the route.

``decide(..., event=None, ...)`` re-derives the current decision (to show a page again). It may
still move the learner when time alone changes the answer (a review falling due), so the caller
stores the state it returns only together with a recorded event: a launch is an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from adaptive_lti.core import learner as model
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.conditions import format_value
from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.constructs.base import DONE, ROUTE
from adaptive_lti.core.constructs.review import start_due_review
from adaptive_lti.core.design import (
    Activity,
    Check,
    Choice,
    DesignMoveOn,
    Intake,
    MoveOn,
    Step,
)
from adaptive_lti.core.errors import EngineError
from adaptive_lti.core.events import Event, Migrated, Reset
from adaptive_lti.core.explanation import (
    Explanation,
    TraceEntry,
    join_phrases,
    lower_title,
    path_text,
    reasons,
    values_text,
)
from adaptive_lti.core.learner import (
    Cursor,
    Interruption,
    LearnerState,
    Offer,
    OfferReason,
    RouteTaken,
    StepPath,
    Value,
)
from adaptive_lti.core.mastery import is_mastered
from adaptive_lti.core.migration import migrate_state
from adaptive_lti.core.route_events import apply_routing_event, reset_state
from adaptive_lti.core.route_index import design_index


class DecisionBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    explanation: Explanation
    grade: float | None = None  # what the VLE gradebook should hold now (None: nothing to send)
    routes: tuple[str, ...] = ()  # the branch cases the learner was put on, in the order taken
    flags: tuple[str, ...] = ()  # raised for instructors, e.g. "needs-help"


class NextActivity(DecisionBase):
    kind: Literal["activity"] = "activity"
    activity: str
    title: str
    activity_kind: str  # page, check, intake, link, reflection
    reason: OfferReason
    attempt: int  # which attempt this will be (1 for the first)
    attempts_left: int | None = None  # for checks with max_attempts
    resumed: bool = False  # the learner was already sent here and has not finished it


class ChoiceOption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    activity: str
    title: str
    description: str = ""


class ChoiceOffered(DecisionBase):
    kind: Literal["choose"] = "choose"
    choice: str
    prompt: str
    options: tuple[ChoiceOption, ...]
    required: tuple[ChoiceOption, ...]  # done by everyone, not part of the pick
    least: int
    most: int


class InputQuestion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute: str
    question: str
    type: str
    values: tuple[str, ...] = ()
    labels: dict[str, str] = {}


class NeedsInput(DecisionBase):
    kind: Literal["input"] = "input"
    activity: str
    title: str
    questions: tuple[InputQuestion, ...]


class DesignCompleted(DecisionBase):
    kind: Literal["completed"] = "completed"
    passed: bool | None  # None when the design has no passed_when
    satisfied: bool  # the design's completion rule (move_on) holds


Decision = Annotated[
    NextActivity | ChoiceOffered | NeedsInput | DesignCompleted, Field(discriminator="kind")
]


DECISION_ADAPTER: TypeAdapter[Decision] = TypeAdapter(Decision)


def _move_on(activity: Activity) -> MoveOn:
    if activity.move_on is not None:
        return activity.move_on
    if isinstance(activity, Check) and activity.pass_mark is not None:
        return MoveOn.passed
    return MoveOn.completed


_UNEXPLAINED = Explanation(
    rule="", learner_text="", instructor_detail="(not explained: decided with explain=False)"
)


class Walk:
    """One decision: a mutable working copy of the routing part of the state, then one copy back."""

    __slots__ = (
        "_lookup",
        "choices",
        "cursor",
        "design",
        "explain",
        "finished",
        "flags",
        "groups",
        "index",
        "interruption",
        "learner_key",
        "may_interrupt",
        "now",
        "offer",
        "override",
        "remediation",
        "reviews",
        "routes",
        "state",
        "trace",
    )

    def __init__(
        self,
        design: CompiledDesign,
        state: LearnerState,
        now: datetime,
        learner_key: str,
        explain: bool = True,
    ) -> None:
        self.explain = explain
        self.design = design
        self.index = design_index(design)
        self.state = state
        self.now = now
        self.learner_key = learner_key
        self.cursor = state.cursor
        self.offer = state.offer
        self.interruption = state.interruption
        self.finished = state.finished
        self.override = state.override
        self.choices = state.choices
        self.groups = state.groups
        self.routes = state.routes
        self.remediation = state.remediation
        self.reviews = state.reviews
        self.flags = state.flags
        self.trace: list[TraceEntry] = []
        self.may_interrupt = False
        self._lookup: Callable[[str], Value] | None = None  # made on first use

    # -- bookkeeping --

    def lookup(self, name: str) -> Value:
        if self._lookup is None:
            self._lookup = model.make_lookup(self.design.design, self.state, self.now, self.groups)
        return self._lookup(name)

    def note(
        self, rule: str, path: StepPath | str = "", *, learner: str = "", **extra: Any
    ) -> None:
        where = path if isinstance(path, str) else path_text(path)
        detail = extra.pop("detail", rule)
        self.trace.append(
            TraceEntry(rule=rule, path=where, learner=learner, detail=detail, **extra)
        )

    def finish_state(self) -> LearnerState:
        return model.replace(
            self.state,
            {
                "cursor": self.cursor,
                "offer": self.offer,
                "interruption": self.interruption,
                "finished": self.finished,
                "override": self.override,
                "choices": self.choices,
                "groups": self.groups,
                "routes": self.routes,
                "remediation": self.remediation,
                "reviews": self.reviews,
                "flags": self.flags,
            },
        )

    def set_group(self, split_id: str, variant: str) -> None:
        self.groups = {**self.groups, split_id: variant}
        self._lookup = None

    # -- moving along the route --

    def advance_from(self, path: StepPath) -> None:
        """Move past the step at ``path`` (and past finished enclosing branches and splits)."""
        self.offer = None
        while True:
            container, position = path[:-1], path[-1]
            assert isinstance(position, int)
            if position + 1 < len(self.index.containers[container]):
                self.cursor = self.index.cursors[(*container, position + 1)]
                return
            if container == ROUTE:
                self.cursor = Cursor(step=path, phase="end")
                self.finished = True
                if self.explain:
                    self.note("end of the route", detail="the last step of the route is done")
                return
            path = self.index.owner[container]

    def enter(self, container: StepPath, owner: StepPath) -> None:
        if self.index.containers[container]:
            self.offer = None
            self.cursor = self.index.cursors[(*container, 0)]
        else:
            self.advance_from(owner)

    # -- the main loop --

    def run(self) -> Decision:
        budget = 8 * len(self.index.steps) + 64
        for _ in range(budget):
            if self.finished:
                return self.completed()
            if self.interruption is not None:
                decision = self.visit_interruption(self.interruption)
                if decision is not None:
                    return decision
                continue
            if (self.may_interrupt or self.offer is None) and start_due_review(self):
                continue
            if self.cursor is None:
                self.cursor = Cursor(step=(*ROUTE, 0))
                continue
            step = self.index.steps[self.cursor.step]
            decision = self.visit(self.cursor, step)
            if decision is not None:
                return decision
        raise EngineError(  # pragma: no cover - every step moves forward; this guards a bug
            f"the route of '{self.design.id}' did not settle after {budget} steps",
            hint="report this design to the developers",
        )

    def visit(self, cursor: Cursor, step: Step) -> Decision | None:
        path = cursor.step
        if isinstance(step, str):
            decision = self.slot(step, "route", path, gate=True)
            if decision is None:
                self.advance_from(path)
            return decision
        return construct_of(step).visit(self, cursor, step)

    # -- one activity --

    def slot(
        self,
        activity_id: str,
        reason: OfferReason,
        path: StepPath,
        *,
        gate: bool,
        before: list[str] | None = None,
    ) -> Decision | None:
        """Offer ``activity_id`` until it is done; None once it is (``gate``: apply move_on)."""
        activity = self.design.activity(activity_id)
        outcome = self.state.outcome(activity_id)
        where = path_text(path)
        if isinstance(activity, Intake):
            missing = model.unknown_attributes(self.state, activity.ask)
            if not missing:
                if self.explain:
                    self.note(
                        f"intake '{activity_id}' skipped",
                        path,
                        detail=f"intake '{activity_id}' at {where} skipped: "
                        f"{', '.join(activity.ask)} already known",
                    )
                return DONE
            return self.needs_input(activity_id, activity, missing, path)
        offer = self.offer
        if (
            offer is not None
            and offer.activity == activity_id
            and outcome.attempts > offer.baseline
        ):
            if gate and not self.moved_on(activity_id, activity, outcome.passed):
                if self.attempts_left(activity, outcome.attempts) != 0:
                    assert isinstance(activity, Check) and activity.pass_mark is not None
                    if self.explain:
                        self.note(
                            f"'{activity_id}' not passed: try again",
                            path,
                            learner=f"Your {lower_title(activity.title)} score was "
                            f"{format_value(outcome.score)}, below the pass mark "
                            f"{format_value(activity.pass_mark)}: try again.",
                            detail=f"'{activity_id}' at {where}: score {format_value(outcome.score)} "
                            f"< pass_mark {format_value(activity.pass_mark)}, move_on "
                            f"{_move_on(activity).value}: offered again",
                            values={f"{activity_id}.score": outcome.score},
                        )
                    self.offer = Offer(
                        activity=activity_id, baseline=outcome.attempts, reason="retry"
                    )
                    return self.next_activity(activity_id, "retry", path)
                if self.explain:
                    self.note(
                        f"'{activity_id}' not passed, no attempts left",
                        path,
                        learner=f"You have used every attempt at {lower_title(activity.title)}.",
                        detail=f"'{activity_id}' at {where}: not passed and no attempts left; "
                        "the route moves on",
                    )
            return DONE
        if offer is None or offer.activity != activity_id:
            if _move_on(activity) is MoveOn.not_applicable:
                if self.explain:
                    self.note(
                        f"'{activity_id}' not required",
                        path,
                        detail=f"'{activity_id}' at {where} skipped: move_on not-applicable",
                    )
                return DONE
            if self.attempts_left(activity, outcome.attempts) == 0:
                if self.explain:
                    self.note(
                        f"'{activity_id}' has no attempts left",
                        path,
                        detail=f"'{activity_id}' at {where} skipped: all "
                        f"{outcome.attempts} attempts used",
                    )
                return DONE
            self.offer = Offer(activity=activity_id, baseline=outcome.attempts, reason=reason)
            if self.explain:
                self.note(
                    f"next step at {where}",
                    path,
                    detail=f"offer '{activity_id}' ({activity.kind}) at {where} ({reason})",
                )
            return self.next_activity(activity_id, reason, path)
        return self.next_activity(activity_id, offer.reason, path, resumed=True)

    def moved_on(self, activity_id: str, activity: Activity, passed: bool) -> bool:
        move_on = _move_on(activity)
        if move_on in {MoveOn.passed, MoveOn.completed_and_passed}:
            return passed
        return True

    @staticmethod
    def attempts_left(activity: Activity, attempts: int) -> int | None:
        if isinstance(activity, Check) and activity.max_attempts is not None:
            return max(activity.max_attempts - attempts, 0)
        return None

    # -- composite steps --

    def visit_interruption(self, interruption: Interruption) -> Decision | None:
        outcome = self.state.outcome(interruption.activity)
        if outcome.attempts > interruption.baseline:
            if interruption.kind == "review":
                self.reviews = {**self.reviews, interruption.key: "done"}
            if self.explain:
                self.note(
                    f"{interruption.kind} '{interruption.activity}' done",
                    interruption.key,
                    detail=f"{interruption.kind} '{interruption.activity}' done; back to the route",
                )
            self.interruption = None
            return None
        reason: OfferReason = "review" if interruption.kind == "review" else "override"
        where: StepPath = self.cursor.step if self.cursor is not None else ROUTE
        resumed = not any(entry.learner for entry in self.trace)
        return self.next_activity(interruption.activity, reason, where, resumed=resumed)

    # -- decisions --

    def current_routes(self) -> list[RouteTaken]:
        """The branch cases enclosing the cursor, outermost first."""
        if self.cursor is None:
            return []
        step = self.cursor.step
        taken = []
        for position, part in enumerate(step):
            if part == "branch":
                route = self.routes.get(path_text(step[:position]))
                if route is not None:
                    taken.append(route)
        return taken

    def route_sentence(self, taken: RouteTaken) -> str:
        design = self.design.design
        if taken.by is not None:
            why = f": {taken.reason}" if taken.reason else ""
            return f"You are on the {taken.case} route because your instructor put you on it{why}."
        if taken.condition is not None:
            tree = self.design.condition(taken.condition).tree
            because = join_phrases(reasons(design, tree, taken.values, True))
            return f"You are on the {taken.case} route because {because}."
        if not taken.rejected:
            return f"You are on the {taken.case} route."
        others = []
        for name, when, values in taken.rejected:
            tree = self.design.condition(when).tree
            others.append(f"{name}: {join_phrases(reasons(design, tree, values, False))}")
        return (
            f"You are on the {taken.case} route because the other routes did not apply "
            f"({'; '.join(others)})."
        )

    def learner_text(self, action: str) -> str:
        sentences = [entry.learner for entry in self.trace if entry.learner]
        fired_here = any(entry.result is True and entry.learner for entry in self.trace)
        sentences.append(action)
        if not fired_here:
            routes = self.current_routes()
            if routes:
                sentences.append(self.route_sentence(routes[-1]))
        return " ".join(sentence for sentence in sentences if sentence)

    def explanation(self, summary: str, action: str) -> Explanation:
        if not self.explain:
            return _UNEXPLAINED
        fired = [entry for entry in self.trace if entry.learner or entry.result is True]
        rule = fired[-1].rule if fired else (self.trace[-1].rule if self.trace else summary)
        lines = [f"Decision: {summary}"]
        lines.extend(f"- {entry.detail}" for entry in self.trace)
        routes = self.current_routes()
        if routes and not any(entry.result is True for entry in self.trace):
            for taken in routes:
                how = (
                    f"set by {taken.by}" + (f" ({taken.reason})" if taken.reason else "")
                    if taken.by
                    else (
                        f"when {taken.condition}; read {values_text(taken.values)}"
                        if taken.condition
                        else "otherwise"
                    )
                )
                lines.append(f'- on route "{taken.case}" of {taken.branch}: {how}')
        if self.override is not None:
            note = self.override
            lines.append(
                f"- last override by {note.by} at {note.at.isoformat()}: {note.target}"
                + (f" ({note.reason})" if note.reason else "")
            )
        if self.flags:
            lines.append(
                "- flags: " + "; ".join(f"{flag}: {why}" for flag, why in self.flags.items())
            )
        return Explanation(
            rule=rule,
            learner_text=self.learner_text(action),
            instructor_detail="\n".join(lines),
            trace=tuple(self.trace),
        )

    def common(self) -> dict[str, Any]:
        routes = tuple(taken.case for taken in self.routes.values())
        return {"grade": self.grade(), "routes": routes, "flags": tuple(self.flags)}

    def next_activity(
        self, activity_id: str, reason: OfferReason, path: StepPath, *, resumed: bool = False
    ) -> NextActivity:
        activity = self.design.activity(activity_id)
        outcome = self.state.outcome(activity_id)
        verb = "Continue with" if resumed else "Next:"
        action = f"{verb} {activity.title}."
        summary = (
            f"{'continue' if resumed else 'next'} activity '{activity_id}' ({activity.kind}) "
            f"at {path_text(path)}, reason {reason}"
        )
        return NextActivity(
            activity=activity_id,
            title=activity.title,
            activity_kind=activity.kind,
            reason=reason,
            attempt=outcome.attempts + 1,
            attempts_left=self.attempts_left(activity, outcome.attempts),
            resumed=resumed,
            explanation=self.explanation(summary, action),
            **self.common(),
        )

    def choice_offered(self, spec: Choice, path: StepPath) -> ChoiceOffered:
        def option(activity_id: str) -> ChoiceOption:
            activity = self.design.activity(activity_id)
            return ChoiceOption(
                activity=activity_id, title=activity.title, description=activity.description
            )

        options = tuple(option(a) for a in spec.from_ if a not in spec.required)
        required = tuple(option(a) for a in spec.required)
        least, most = spec.least, min(spec.most, len(options))
        count = str(least) if least == most else f"{least} to {most}"
        action = f"Choose {count} of: " + ", ".join(o.title for o in options) + "."
        if required:
            action += " Everyone also does: " + ", ".join(o.title for o in required) + "."
        summary = f"choice '{spec.id}' at {path_text(path)}: pick {count} of {len(options)}"
        if self.explain:
            self.note(f"choice '{spec.id}' offered", path, detail=summary)
        return ChoiceOffered(
            choice=spec.id,
            prompt=spec.prompt,
            options=options,
            required=required,
            least=least,
            most=most,
            explanation=self.explanation(summary, action),
            **self.common(),
        )

    def needs_input(
        self, activity_id: str, activity: Intake, missing: tuple[str, ...], path: StepPath
    ) -> NeedsInput:
        questions = []
        for attribute_id in missing:
            attribute = self.design.design.attributes[attribute_id]
            questions.append(
                InputQuestion(
                    attribute=attribute_id,
                    question=attribute.question
                    or attribute.description
                    or attribute_id.replace("_", " "),
                    type=attribute.type.value,
                    values=attribute.values or (),
                    labels=attribute.labels or {},
                )
            )
        summary = f"intake '{activity_id}' at {path_text(path)} asks {', '.join(missing)}"
        if self.explain:
            self.note(f"intake '{activity_id}' asks", path, detail=summary)
        action = (
            f"{activity.title}: please answer {len(missing)} question"
            + ("s" if len(missing) > 1 else "")
            + " so we can find the right route for you."
        )
        return NeedsInput(
            activity=activity_id,
            title=activity.title,
            questions=tuple(questions),
            explanation=self.explanation(summary, action),
            **self.common(),
        )

    def grade(self) -> float | None:
        grade = self.design.design.grade
        if grade is None:
            return None
        if grade == "progress":
            if self.finished:
                return 1.0
            if self.cursor is None:
                return 0.0
            return round(self.index.order[self.cursor.step] / max(len(self.index.steps), 1), 4)
        if grade == "mastery":
            skills = self.design.design.skills
            if not skills:
                return None
            known = [self.state.mastery.get(s, skill.prior) for s, skill in skills.items()]
            return round(sum(known) / len(known), 4)
        if grade.endswith(".score"):
            return self.state.outcome(grade[:-6]).score
        value = self.lookup(grade)
        return float(value) if isinstance(value, int | float) else None

    def completed(self) -> DesignCompleted:
        design = self.design.design
        completion = design.completion
        passed: bool | None = None
        values: dict[str, Value] = {}
        if completion.passed_when is not None:
            passed, values = self.design.condition(completion.passed_when).explain(self.lookup)
        mastered = all(
            is_mastered(self.state.mastery.get(s, skill.prior), skill)
            for s, skill in design.skills.items()
        )
        move_on = completion.move_on
        satisfied = {
            DesignMoveOn.completed: True,
            DesignMoveOn.passed: passed is True,
            DesignMoveOn.completed_and_passed: passed is True,
            DesignMoveOn.completed_or_passed: True,
            DesignMoveOn.mastery: mastered,
        }[move_on]
        parts = ["You have finished"]
        if passed is True:
            tree = self.design.condition(completion.passed_when or "").tree
            parts.append(f"and passed: {join_phrases(reasons(design, tree, values, True))}")
        elif passed is False:
            tree = self.design.condition(completion.passed_when or "").tree
            parts.append(f"but not passed: {join_phrases(reasons(design, tree, values, False))}")
        action = " ".join(parts) + "."
        if move_on is DesignMoveOn.mastery:
            action += (
                " You have mastered every skill."
                if mastered
                else " Some skills are not mastered yet, so the course is not complete."
            )
        grade = self.grade()
        if grade is not None:
            action += f" Your grade: {format_value(grade)}."
        summary = (
            f"design completed; move_on {move_on.value} -> "
            f"{'satisfied' if satisfied else 'not satisfied'}"
            + (
                f"; passed_when {completion.passed_when} -> {str(passed).lower()}; "
                f"read {values_text(values)}"
                if completion.passed_when
                else ""
            )
            + (f"; grade {design.grade} = {format_value(grade)}" if design.grade else "")
        )
        self.trace = [entry for entry in self.trace if entry.rule != "end of the route"]
        if self.explain:
            self.note(
                "design completion",
                values=values,
                condition=completion.passed_when,
                result=passed,
                detail=summary,
            )
        return DesignCompleted(
            passed=passed,
            satisfied=satisfied,
            explanation=self.explanation(summary, action),
            **self.common(),
        )


def start(design: CompiledDesign) -> LearnerState:
    """The state of a learner who has done nothing yet on this version."""
    return LearnerState(design=design.id, version=design.version)


def decide(
    design: CompiledDesign,
    state: LearnerState,
    event: Event | None,
    now: datetime,
    *,
    learner_key: str,
    explain: bool = True,
) -> tuple[LearnerState, Decision]:
    """Fold ``event`` (if any) into ``state`` and decide what the learner does next.

    Raises ``EngineError`` (and changes nothing) for an event that cannot happen: an unknown
    activity or question, a choice that breaks its rules, an attempt beyond ``max_attempts``.
    ``learner_key`` identifies the learner stably (it seeds split assignment). ``explain=False``
    skips rendering the explanation (the simulator's bulk runs); the routing is the same.
    """
    if isinstance(event, Migrated):
        state = migrate_state(state, design, event.from_version, event.at, event)
    elif state.design != design.id or state.version != design.version:
        raise EngineError(
            f"the learner is on '{state.design}' version {state.version}, not "
            f"'{design.id}' version {design.version}",
            hint="decide with the version the learner started, or migrate them first",
        )
    elif isinstance(event, Reset):
        state = reset_state(state, event)
    elif event is not None:
        state = model.apply(design.design, state, event)
    walk = Walk(design, state, now, learner_key, explain)
    if event is not None:
        apply_routing_event(walk, design, event)
    decision = walk.run()
    return walk.finish_state(), decision


def replay(
    designs: CompiledDesign | Mapping[int, CompiledDesign],
    events: Iterable[Event],
    *,
    learner_key: str,
) -> tuple[LearnerState, Decision]:
    """Rebuild a learner's state from their event log (oldest first) and decide again.

    ``designs``: the design, or its versions by number when the log contains ``migrated`` events.
    The same events always give the same state and decisions; each event is decided at its own
    time, and the final decision is made at the last event's time.
    """
    by_version = {designs.version: designs} if isinstance(designs, CompiledDesign) else designs
    versions = sorted(by_version)
    if not versions:
        raise EngineError("no design to replay against", hint="pass the design's versions")
    first = min(versions)
    design = by_version[first]
    state = start(design)
    decision: Decision | None = None
    for event in events:
        if isinstance(event, Migrated):
            target = by_version.get(event.to_version)
            if target is None:
                raise EngineError(
                    f"the log moves the learner to version {event.to_version}, which is not given",
                    hint="pass every version the log mentions",
                )
            design = target
        state, decision = decide(design, state, event, event.at, learner_key=learner_key)
    if decision is None:
        raise EngineError("the event log is empty", hint="a learner's log starts with a launch")
    return state, decision
