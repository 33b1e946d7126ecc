"""The learning-design language: what a design file may say, as frozen pydantic models.

A design is a short YAML file. It declares learner **attributes** (typed, with a domain and where
their value comes from), **skills** (with Bayesian-knowledge-tracing parameters), **activities**
(pages, checks, intake forms, links, reflections), a **route** through them, the design's
**completion** rule and the **grade** sent to the VLE. A small example::

    design: intro-programming
    title: Introduction to Programming
    version: 1
    attributes:
      prior_programming: {type: choice, values: [none, some, experienced], sources: [custom, intake]}
    skills:
      loops: {}
    activities:
      welcome: {kind: intake, title: Welcome, ask: [prior_programming]}
      diagnostic: {kind: check, title: Diagnostic, questions: [...]}
      loops-lesson: {kind: page, title: Loops, body: "..."}
      project: {kind: check, title: Project, pass_mark: 0.6, questions: [...]}
    route:
      - welcome
      - diagnostic
      - branch:
          - name: foundations
            when: prior_programming == "none" or diagnostic.score < 0.5
            then: [loops-lesson]
          - name: standard
            otherwise: true
            then: []
      - project
    completion: {move_on: completed-and-passed, passed_when: project.score >= 0.6}
    grade: project.score

The route is *structured* (sequences, branches, bounded loops, choices, splits, reviews) rather than
a graph of jumps: Moodle Lesson's free jumps are what authors call "labyrinthine", and structure
makes most dead ends and unbounded loops impossible to write.

Route steps (a route is a list of steps, run in order):

- ``activity-id`` — do that activity.
- ``branch: [cases]`` — the first case whose ``when`` holds is taken (``otherwise: true`` always
  holds); its ``then`` steps run, then the route continues after the branch. The case ``name`` is
  the route's name in explanations and analytics ("foundations").
- ``remediate: {check, lesson, below, max, support, flag}`` — do ``check``; while its latest score
  is below ``below`` and the learner has had fewer than ``max`` remedial rounds, do ``lesson`` then
  ``check`` again. After ``max`` failed rounds, do ``support`` (if given), raise ``flag`` (e.g.
  "needs-help", shown to instructors) and continue.
- ``choose: {id, prompt, pick | min/max, from, required}`` — the learner picks activities from
  ``from`` (exactly ``pick``, or between ``min`` and ``max``); ``required`` activities are done by
  everyone (the mandatory core). The chosen activities run in the order picked.
- ``split: {id, variants: {name: {weight, then}}}`` — stable random assignment for experiments:
  the same learner always gets the same variant (hash of learner, design and split id); the
  variant is readable in conditions as ``group.<split id>``.
- ``review: {activity, of, after}`` — spaced review: once ``after`` (a duration such as ``7d``)
  has passed since ``of`` was completed, ``activity`` is offered at the learner's next decision,
  before anything else, as long as the learner has not yet passed this step. Reaching the step
  before the review is due skips it.

Conditions are readable expressions (``prior_programming == "none" or diagnostic.score < 0.5``),
parsed by ``core/conditions.py`` (never ``eval``) and type-checked against the declared attributes.
Names they can read:

- ``<attribute>`` — a learner attribute (``none`` when unknown),
- ``<activity>.score`` (0..1 or none), ``.attempts`` (int), ``.completed``, ``.passed`` (bool),
- ``mastery.<skill>`` (0..1) and ``mastered.<skill>`` (bool, mastery ≥ the skill's threshold),
- ``group.<split>`` — the learner's variant in a split,
- ``since(<activity>)`` — time since that activity was completed, compared with durations
  (``since(loops-check) >= 7d``; none when not completed).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Activity, attribute, skill and split ids: lower-case words joined by "-" or "_".
IDENTIFIER = r"^[a-z][a-z0-9_-]*$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER, max_length=64)]
# A duration such as "30m", "12h", "7d" or "2w".
DURATION = r"^[0-9]+(\.[0-9]+)?[mhdw]$"
Duration = Annotated[str, Field(pattern=DURATION)]
# A condition expression, parsed and type-checked by core/conditions.py at load time.
ConditionText = Annotated[str, Field(min_length=1, max_length=2000)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    """Frozen, and unknown keys are errors (the loader suggests the nearest known key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- learner attributes ----------------------------------------------------------------------


class AttributeType(StrEnum):
    choice = "choice"
    number = "number"
    boolean = "boolean"
    text = "text"


class AttributeSource(StrEnum):
    """Where an attribute's value comes from, tried in the order listed."""

    custom = "custom"  # an LTI custom parameter (claim .../custom), named ``key`` or the attribute
    launch = "launch"  # a launch field: locale, context_id, ... (``key`` names it)
    role = "role"  # the launch's role: learner, instructor, ...
    intake = "intake"  # asked by an intake activity that lists the attribute in ``ask``
    outcome = "outcome"  # an outcome recorded for the same person (this or another course)
    imported = "imported"  # a value imported by an administrator (CSV, API)


class Attribute(Strict):
    type: AttributeType
    description: str = ""
    values: tuple[str, ...] | None = None  # for choice: the domain
    labels: dict[str, str] | None = None  # for choice: how each value is shown in an intake form
    minimum: float | None = None  # for number
    maximum: float | None = None
    sources: tuple[AttributeSource, ...] = (AttributeSource.intake,)
    key: str | None = None  # name of the custom parameter / launch field / outcome, if different
    question: str | None = None  # intake wording; defaults to the description or the name
    default: str | float | bool | None = None  # used when no source gives a value

    @model_validator(mode="after")
    def _domain_fits_type(self) -> Attribute:
        if self.type is AttributeType.choice:
            if not self.values:
                raise ValueError("a choice attribute needs 'values', e.g. values: [none, some]")
            if len(set(self.values)) != len(self.values):
                raise ValueError("'values' lists the same value twice")
        elif self.values is not None:
            raise ValueError(f"'values' is only for choice attributes, not {self.type.value}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("'minimum' is greater than 'maximum'")
        return self


# --- skills (mastery model) ------------------------------------------------------------------


class Skill(Strict):
    """Bayesian knowledge tracing parameters (defaults after OATutor: mastery at 0.85)."""

    title: str = ""
    prior: Fraction = 0.3  # P(L0): known before any evidence
    learn: Fraction = 0.2  # P(T): learnt at each opportunity
    guess: Fraction = 0.2  # P(G): right answer without knowing
    slip: Fraction = 0.1  # P(S): wrong answer despite knowing
    mastery: Fraction = 0.85  # threshold for mastered.<skill>


# --- activities ------------------------------------------------------------------------------


class MoveOn(StrEnum):
    """Completion criteria, after cmi5's moveOn."""

    completed = "completed"
    passed = "passed"
    completed_and_passed = "completed-and-passed"
    completed_or_passed = "completed-or-passed"
    not_applicable = "not-applicable"


class Question(Strict):
    """An auto-graded question: pick one of ``choices``; ``answer`` is the right one."""

    id: Identifier
    prompt: str
    choices: tuple[str, ...] = Field(min_length=2)
    answer: str
    skill: Identifier | None = None  # the skill this question gives evidence for
    feedback: str = ""  # shown after answering (why the answer is right)

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> Question:
        if self.answer not in self.choices:
            raise ValueError(
                f"answer {self.answer!r} is not one of the choices {list(self.choices)}"
            )
        return self


class ActivityBase(Strict):
    title: str
    description: str = ""
    move_on: MoveOn | None = None  # default: "passed" for checks with a pass_mark, else "completed"
    minutes: float | None = Field(default=None, ge=0)  # expected time, for the simulator


class Page(ActivityBase):
    """Content in Markdown: inline ``body`` or a ``file`` beside the design."""

    kind: Literal["page"]
    body: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _has_content(self) -> Page:
        if (self.body is None) == (self.file is None):
            raise ValueError("a page needs exactly one of 'body' (Markdown) or 'file' (a .md path)")
        return self


class Check(ActivityBase):
    """A check or quiz; its score (0..1) is the share of right answers."""

    kind: Literal["check"]
    questions: tuple[Question, ...] = Field(min_length=1)
    pass_mark: Fraction | None = None
    max_attempts: int | None = Field(default=None, ge=1)


class Intake(ActivityBase):
    """Asks for learner attributes that no earlier source has given."""

    kind: Literal["intake"]
    ask: tuple[Identifier, ...] = Field(min_length=1)


class Link(ActivityBase):
    """An external resource (e.g. a Moodle page); the learner marks it done."""

    kind: Literal["link"]
    url: Annotated[str, Field(pattern=r"^https?://")]


class Reflection(ActivityBase):
    """A free-text answer, recorded; completes when submitted."""

    kind: Literal["reflection"]
    prompt: str


Activity = Annotated[Page | Check | Intake | Link | Reflection, Field(discriminator="kind")]


# --- the route -------------------------------------------------------------------------------


class Case(Strict):
    name: str | None = None
    when: ConditionText | None = None
    otherwise: bool = False
    then: tuple[Step, ...] = ()

    @model_validator(mode="after")
    def _when_or_otherwise(self) -> Case:
        if (self.when is None) == (not self.otherwise):
            raise ValueError("a case needs either 'when: <condition>' or 'otherwise: true'")
        return self


class Branch(Strict):
    branch: tuple[Case, ...] = Field(min_length=1)


class Remediation(Strict):
    check: Identifier
    lesson: Identifier
    below: Fraction
    max: int = Field(ge=1, le=10)
    support: Identifier | None = None
    flag: Identifier | None = None


class Remediate(Strict):
    remediate: Remediation


class Choice(Strict):
    id: Identifier
    prompt: str = "Choose what to do next"
    from_: tuple[Identifier, ...] = Field(alias="from", min_length=1)
    pick: int | None = Field(default=None, ge=1)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    required: tuple[Identifier, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _pick_or_range(self) -> Choice:
        if self.pick is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either 'pick: k' or 'min'/'max', not both")
        if self.pick is None and self.min is None and self.max is None:
            raise ValueError("say how many to choose: 'pick: 1', or 'min: 1' and/or 'max: 2'")
        return self

    @property
    def least(self) -> int:
        return self.pick if self.pick is not None else (self.min or 0)

    @property
    def most(self) -> int:
        if self.pick is not None:
            return self.pick
        return self.max if self.max is not None else len(self.from_)


class Choose(Strict):
    choose: Choice


class Variant(Strict):
    weight: float = Field(default=1.0, gt=0)
    then: tuple[Step, ...] = ()


class SplitSpec(Strict):
    id: Identifier
    variants: dict[Identifier, Variant] = Field(min_length=2)


class Split(Strict):
    split: SplitSpec


class ReviewSpec(Strict):
    activity: Identifier
    of: Identifier
    after: Duration


class Review(Strict):
    review: ReviewSpec


Step = Identifier | Branch | Remediate | Choose | Split | Review


# --- completion, grade, versions -------------------------------------------------------------


class DesignMoveOn(StrEnum):
    completed = "completed"  # the route is finished
    passed = "passed"  # passed_when holds
    completed_and_passed = "completed-and-passed"
    completed_or_passed = "completed-or-passed"
    mastery = "mastery"  # every skill mastered


class Completion(Strict):
    move_on: DesignMoveOn = DesignMoveOn.completed
    passed_when: ConditionText | None = None


class Migration(Strict):
    """How learners on an earlier version move to this one: old activity id -> new activity id.

    Learners whose current activity is not listed stay on the version they started.
    """

    from_version: int = Field(ge=1)
    activities: dict[Identifier, Identifier]


class Design(Strict):
    design: Identifier  # the design's id
    title: str
    version: int = Field(default=1, ge=1)
    description: str = ""
    attributes: dict[Identifier, Attribute] = {}
    skills: dict[Identifier, Skill] = {}
    activities: dict[Identifier, Activity] = Field(min_length=1)
    route: tuple[Step, ...] = Field(min_length=1)
    completion: Completion = Completion()
    # What the VLE gradebook receives, 0..1: "<activity>.score", "mastery" (mean over skills) or
    # "progress" (share of the route done). None: nothing is sent.
    grade: str | None = None
    migrations: tuple[Migration, ...] = ()

    @property
    def id(self) -> str:
        return self.design


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a design file, for editors (``adaptive-lti schema``)."""
    schema = Design.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "adaptive-lti learning design"
    return schema


Case.model_rebuild()
Variant.model_rebuild()
Design.model_rebuild()
