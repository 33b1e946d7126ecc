"""The catalogue of published designs and which activity uses which design, as immutable values.

A design is *published* into the tool as a numbered version (the ``version:`` of its file). A
published version never changes: learners part-way through a route stay on the version they
started, so the same id and version with other content is refused. A *binding* ties an LTI resource
link (an activity placed in a course) to a design, either pinned to one version or following the
latest one.

``db/designs_repo.py`` turns rows into these values; ``services/design_*.py`` implement the use
cases. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from adaptive_lti.core.errors import InvalidInputError

# The custom parameter (LTI Core 1.3 §5.4.6, claim .../custom) that names an activity's design:
# ``design=intro-programming`` (follow the latest version) or ``design=intro-programming@3``.
DESIGN_CUSTOM_PARAMETER = "design"

_DESIGN_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class BindingMethod(StrEnum):
    """How a resource link came to be bound to its design."""

    # The instructor picked the design in the tool during deep linking (LTI Deep Linking 2.0).
    deep_link = "deep-link"
    # The activity carries the custom parameter ``design=ID`` (typed by an instructor in the VLE).
    custom_parameter = "custom-param"
    # An instructor chose it on the tool's own Designs page.
    instructor = "instructor"


@dataclass(frozen=True)
class Tenant:
    """Whose data a statement may touch: one platform registration (issuer + client id).

    Designs, their versions and owners, bindings, deep-link offers and enrolments belong to one
    tenant; every repository function reading them takes this value and builds its statement
    from it, so a query without the scope cannot be written by accident.
    """

    registration_id: int


@dataclass(frozen=True)
class Publisher:
    """Who publishes a version: a platform user of the tenant (``subject`` from the launch) or
    the command line (an operator with shell access). ``administrator`` is the launch's
    Administrator role; administrators and the command line may publish new versions of any of
    the tenant's designs, other users only of designs they own."""

    name: str
    subject: str | None = None
    administrator: bool = False
    command_line: bool = False

    @property
    def unrestricted(self) -> bool:
        return self.command_line or self.administrator


@dataclass(frozen=True)
class DesignOwnerInfo:
    """A platform user who may publish new versions of one of the tenant's designs."""

    design_id: str
    subject: str
    name: str
    granted_at: datetime


@dataclass(frozen=True)
class DesignReference:
    """A design id with a pinned version, or ``version=None`` for "the latest published"."""

    design_id: str
    version: int | None = None

    def __str__(self) -> str:
        return self.design_id if self.version is None else f"{self.design_id}@{self.version}"


def parse_design_reference(text: str) -> DesignReference:
    """Parse ``ID`` or ``ID@VERSION`` (the value of the ``design`` custom parameter)."""
    value = text.strip()
    design_id, separator, version_text = value.partition("@")
    design_id = design_id.strip()
    if not _DESIGN_ID.match(design_id):
        raise InvalidInputError(
            f"{value!r} does not name a design: a design id is lower-case letters, digits, '-' "
            "and '_', starting with a letter (for example intro-programming).",
            hint="Set the activity's custom parameter to design=ID or design=ID@VERSION.",
        )
    if not separator:
        return DesignReference(design_id)
    version_text = version_text.strip()
    if not version_text.isdigit() or int(version_text) < 1:
        raise InvalidInputError(
            f"{value!r} does not name a design version: after '@' comes a version number "
            "such as 1 or 3.",
            hint="Use design=ID for the latest version or design=ID@VERSION to pin one.",
        )
    return DesignReference(design_id, int(version_text))


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def content_hash(source_text: str, page_bodies: Mapping[str, str] | None = None) -> str:
    """SHA-256 of the design file's text and of the page files it includes.

    Line endings are normalised so the same file published from Windows and from Linux is the
    same content; every other byte counts, since a changed comment is a changed source.
    """
    digest = hashlib.sha256(_normalise_newlines(source_text).encode("utf-8"))
    for activity_id in sorted(page_bodies or {}):
        body = _normalise_newlines((page_bodies or {})[activity_id])
        # Length-prefixed, so no split of the same bytes between parts gives the same hash.
        for part in (activity_id, body):
            encoded = part.encode("utf-8")
            digest.update(b"\0%d:" % len(encoded) + encoded)
    return digest.hexdigest()


@dataclass(frozen=True)
class LintSummary:
    """What the linter said when the version was published (errors refuse publishing)."""

    errors: int
    warnings: int
    messages: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return self.errors == 0 and self.warnings == 0

    def to_json(self) -> dict[str, object]:
        return {"errors": self.errors, "warnings": self.warnings, "messages": list(self.messages)}

    @classmethod
    def from_json(cls, value: object) -> LintSummary:
        data = value if isinstance(value, dict) else {}
        messages = data.get("messages", [])
        return cls(
            errors=int(data.get("errors", 0)),
            warnings=int(data.get("warnings", 0)),
            messages=tuple(str(m) for m in messages) if isinstance(messages, list) else (),
        )


@dataclass(frozen=True)
class DesignVersionInfo:
    """One published version of a design, with its source."""

    design_id: str
    version: int
    title: str
    content_hash: str
    lint: LintSummary
    # Whether the design sends a grade to the VLE (its ``grade:`` is set).
    sends_grade: bool
    published_at: datetime
    published_by: str
    source_text: str = field(repr=False, default="")
    # Markdown of the pages the file includes with ``file:``, by activity id.
    page_bodies: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class DesignSummary:
    """A design in the catalogue: its latest version and how many versions there are."""

    design_id: str
    title: str
    latest_version: int
    version_count: int
    latest: DesignVersionInfo


@dataclass(frozen=True)
class PublishResult:
    """What publishing did: ``created`` is False when the identical version was already there."""

    version: DesignVersionInfo
    created: bool


@dataclass(frozen=True)
class ResourceLinkBindingInfo:
    """An activity (resource link within a deployment) bound to a design."""

    id: int
    registration_id: int
    deployment_pk: int
    resource_link_id: str
    context_id: str | None
    design_id: str
    # None: the activity follows the latest published version.
    pinned_version: int | None
    bound_by: str
    method: BindingMethod
    bound_at: datetime

    @property
    def reference(self) -> DesignReference:
        return DesignReference(self.design_id, self.pinned_version)


@dataclass(frozen=True)
class DeepLinkOffer:
    """A design an instructor returned to the platform by deep linking, not yet launched.

    The platform creates the activity from the response; its first launch carries the custom
    parameter we sent and no id linking it back to this offer, so the offer is matched by
    deployment, course and design (see ``services/design_bindings.py``).
    """

    id: int
    registration_id: int
    deployment_pk: int
    context_id: str | None
    design_id: str
    pinned_version: int | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class LaunchDesign:
    """The design a launch runs: the binding and the version it resolves to now."""

    binding: ResourceLinkBindingInfo
    version: DesignVersionInfo
    # True when this launch created the binding.
    newly_bound: bool
