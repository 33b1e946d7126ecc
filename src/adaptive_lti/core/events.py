"""What a learner did, as events: the truth from which every learner state is rebuilt.

Each event is a frozen pydantic model with a ``type`` tag and the moment it happened (``at``, a
timezone-aware datetime given by the caller: the core never reads a clock). The log of a learner's
events on a design, replayed through ``engine.replay``, gives back the same state and the same
decisions every time.

    launched          the platform launched the tool (custom parameters, launch fields, role)
    attribute_set     an attribute's value came from elsewhere (imported, an outcome, an admin)
    intake_answered   the learner answered an intake form
    started           the learner opened an activity
    answered          the learner answered one question of a check
    completed         the learner finished an activity (with a score for checks)
    chose             the learner made a choice (which activities they picked)
    overridden        an instructor moved the learner to an activity or a route
    reset             an instructor reset the learner's progress
    migrated          the learner was moved to a newer version of the design

``event_to_dict`` / ``event_from_dict`` give the JSON form stored in the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

# The value of a learner attribute (a choice or text is a str, a number a float).
AttributeValue = str | float | bool


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime


class Launched(EventBase):
    """A launch from the platform. The engine reads attributes from it per the design's sources."""

    type: Literal["launched"] = "launched"
    custom: dict[str, str] = {}  # LTI custom parameters
    launch: dict[str, str] = {}  # launch fields: locale, context_id, ...
    role: str | None = None  # "learner", "instructor", ...


class AttributeSet(EventBase):
    """An attribute value from an import, another outcome or an administrator."""

    type: Literal["attribute_set"] = "attribute_set"
    attribute: str
    value: AttributeValue | None
    source: Literal["imported", "outcome", "intake", "custom", "launch", "role"] = "imported"


class IntakeAnswered(EventBase):
    """The learner's answers to an intake activity."""

    type: Literal["intake_answered"] = "intake_answered"
    activity: str
    answers: dict[str, AttributeValue]


class Started(EventBase):
    type: Literal["started"] = "started"
    activity: str


class Answered(EventBase):
    """One answer to one question of a check; ``correct`` is as graded when it was answered."""

    type: Literal["answered"] = "answered"
    activity: str
    question: str
    choice: str
    correct: bool


class Completed(EventBase):
    """An activity finished. ``score`` (0..1) for checks; none means "from the answers given"."""

    type: Literal["completed"] = "completed"
    activity: str
    score: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class Chose(EventBase):
    type: Literal["chose"] = "chose"
    choice: str
    picked: tuple[str, ...]


class Overridden(EventBase):
    """An instructor moved the learner: to an ``activity``, or onto the branch case ``route``."""

    type: Literal["overridden"] = "overridden"
    by: str
    reason: str = ""
    activity: str | None = None
    route: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Overridden:
        if (self.activity is None) == (self.route is None):
            raise ValueError("an override names either an 'activity' or a 'route', not both")
        return self


class Reset(EventBase):
    """Progress on the design starts again; attributes and split groups are kept."""

    type: Literal["reset"] = "reset"
    by: str
    reason: str = ""


class Migrated(EventBase):
    type: Literal["migrated"] = "migrated"
    from_version: int
    to_version: int
    activity: str | None = None  # the new version's activity the learner was moved to


Event = Annotated[
    Launched
    | AttributeSet
    | IntakeAnswered
    | Started
    | Answered
    | Completed
    | Chose
    | Overridden
    | Reset
    | Migrated,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready form of an event (datetimes as ISO 8601 strings)."""
    return event.model_dump(mode="json")


def event_from_dict(data: dict[str, Any]) -> Event:
    """Validate a stored event; raises pydantic's ``ValidationError`` on a malformed one."""
    return _EVENT_ADAPTER.validate_python(data)


def event_time(event: Event) -> datetime:
    return event.at
