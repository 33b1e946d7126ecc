"""Grades as values: scores for the platform's gradebook, line items, delivery outcomes and the
retry schedule. Pure: the lti/ clients and the services/ outbox both speak these types.

Spec: LTI Assignment and Grade Services 2.0 (AGS) §3.2 line items, §3.4 scores.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from adaptive_lti.core.errors import InvalidInputError, PlatformServiceError

# AGS 2.0 §3.1: the scopes a launch's AGS claim may grant.
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
# NRPS 2.0 §2.1.
SCOPE_MEMBERSHIP_READONLY = (
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
)


class ActivityProgress(StrEnum):
    """AGS 2.0 §3.4.5: where the learner is in the activity."""

    initialized = "Initialized"
    started = "Started"
    in_progress = "InProgress"
    submitted = "Submitted"
    completed = "Completed"


class GradingProgress(StrEnum):
    """AGS 2.0 §3.4.6: whether the score is final. Only ``FullyGraded`` lands in the gradebook."""

    fully_graded = "FullyGraded"
    pending = "Pending"
    pending_manual = "PendingManual"
    failed = "Failed"
    not_ready = "NotReady"


@dataclass(frozen=True)
class Score:
    """One score for one learner (AGS 2.0 §3.4). ``user_id`` is the learner's launch ``sub``.

    ``score_given`` without ``score_maximum`` is meaningless and a negative score or a maximum
    that is not positive is refused here, so a platform never sees them.
    """

    user_id: str
    activity_progress: ActivityProgress
    grading_progress: GradingProgress
    timestamp: datetime
    score_given: float | None = None
    score_maximum: float | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if not self.user_id:
            raise InvalidInputError("A score needs the learner's user id (the launch's sub).")
        if self.timestamp.tzinfo is None:
            raise InvalidInputError("A score's timestamp must carry a time zone (use UTC).")
        if self.score_given is not None:
            if self.score_maximum is None:
                raise InvalidInputError(
                    "A score with scoreGiven needs scoreMaximum (AGS 2.0 §3.4.3)."
                )
            if not math.isfinite(self.score_given) or self.score_given < 0:
                raise InvalidInputError(
                    f"scoreGiven must be a number of at least 0, not {self.score_given!r}."
                )
        if self.score_maximum is not None and (
            not math.isfinite(self.score_maximum) or self.score_maximum <= 0
        ):
            raise InvalidInputError(
                f"scoreMaximum must be a number greater than 0, not {self.score_maximum!r}."
            )

    def payload(self) -> dict[str, Any]:
        """The JSON body of the score POST (media type application/vnd.ims.lis.v1.score+json)."""
        body: dict[str, Any] = {
            "userId": self.user_id,
            "activityProgress": self.activity_progress.value,
            "gradingProgress": self.grading_progress.value,
            # §3.4.2: ISO 8601 with sub-second precision and a time zone.
            "timestamp": self.timestamp.astimezone(UTC).isoformat(timespec="milliseconds"),
        }
        if self.score_given is not None:
            body["scoreGiven"] = self.score_given
            body["scoreMaximum"] = self.score_maximum
        if self.comment:
            body["comment"] = self.comment
        return body


@dataclass(frozen=True)
class LineItemSpec:
    """A line item the tool wants on the platform (AGS 2.0 §3.2.3).

    Either ``lineitem_url`` is known (the launch's AGS claim carries the activity's own line
    item), or the tool finds the item in the ``lineitems_url`` container by ``resource_id`` (and
    the resource link) and creates it there when missing. ``granted_scopes`` are the scopes of
    the launch's AGS claim; service tokens ask for no others.
    """

    label: str
    score_maximum: float
    granted_scopes: tuple[str, ...]
    lineitem_url: str | None = None
    lineitems_url: str | None = None
    resource_id: str = ""
    tag: str = ""
    platform_resource_link_id: str | None = None

    def __post_init__(self) -> None:
        if not self.lineitem_url and not self.lineitems_url:
            raise InvalidInputError(
                "A line item needs the launch's lineitem URL or its lineitems URL.",
                hint="The launch carried no AGS claim: turn on grade sync for the tool "
                "on the platform.",
            )
        if not math.isfinite(self.score_maximum) or self.score_maximum <= 0:
            raise InvalidInputError(
                f"A line item's scoreMaximum must be greater than 0, not {self.score_maximum!r}."
            )

    def binding_key(self) -> str:
        """What identifies this column for one registration (a short, stable hash)."""
        if self.lineitem_url:
            identity = ["url", self.lineitem_url]
        else:
            identity = [
                "container",
                self.lineitems_url or "",
                self.platform_resource_link_id or "",
                self.resource_id,
                self.tag,
            ]
        return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PlatformLineItem:
    """A line item as the platform returned it (AGS 2.0 §3.2)."""

    url: str
    label: str
    score_maximum: float
    resource_id: str = ""
    tag: str = ""
    resource_link_id: str | None = None


@dataclass(frozen=True)
class PlatformResult:
    """A result as the platform stores it (AGS 2.0 §3.3), after rescaling to the line item."""

    user_id: str
    result_score: float | None
    result_maximum: float | None
    comment: str | None
    timestamp: str | None


class ServiceCallRefused(PlatformServiceError):
    """The platform refused a service call; sending it again unchanged will not help."""


class ServiceUnavailable(PlatformServiceError):
    """The platform could not be reached or failed (5xx, timeout, 429); try again later."""


class ServiceSetupProblem(ServiceUnavailable):
    """The call failed because of a set-up problem an administrator can fix (the platform does
    not know the tool's key, a web server strips the Authorization header). Retried like an
    outage, so delivery resumes by itself once it is fixed."""


class OutboxStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    # Permanently: the platform refused the score, or delivery gave up after the last attempt.
    failed = "failed"
    # Not sent: a newer score for the same learner and column was queued before it went out
    # (AGS 2.0 §3.4: the platform keeps the latest; an older one would only be ignored).
    superseded = "superseded"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter (sleep = random(0, min(cap, base * 2**n))), so
    many workers retrying after an outage do not hit the platform in step. At least
    ``floor_seconds`` pass between two attempts."""

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    floor_seconds: float = 5.0
    max_attempts: int = 12

    def delay(self, attempts_made: int, random_fraction: float) -> timedelta:
        """How long to wait after ``attempts_made`` failed attempts; ``random_fraction`` in [0, 1)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts_made - 1, 0))
        seconds = max(self.floor_seconds, ceiling * min(max(random_fraction, 0.0), 1.0))
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery run did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0
    errors: tuple[str, ...] = field(default=())

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed + self.superseded


@dataclass(frozen=True)
class OutboxEntry:
    """One queued score as instructors and the CLI see it."""

    id: int
    registration_id: int
    line_item_label: str
    lineitem_url: str | None
    user_id: str
    score_given: float | None
    score_maximum: float | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def score_dedupe_key(registration_id: int, binding_key: str, score: Score) -> str:
    """The same score for the same learner and column is the same key: queued once only."""
    identity = json.dumps(
        [registration_id, binding_key, score.payload()], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def line_item_spec_from_claim(
    claim: Mapping[str, Any] | None,
    *,
    label: str,
    score_maximum: float,
    resource_id: str = "",
    tag: str = "",
    platform_resource_link_id: str | None = None,
) -> LineItemSpec | None:
    """The line item a launch's AGS claim (AGS 2.0 §3.1) lets the tool post to, or None when
    the launch grants no way to send scores (no claim, no score scope, no URL).

    With the claim's ``lineitem`` (Moodle: the activity's own grade column) scores go there;
    otherwise the tool's own column is found or created in ``lineitems`` by ``resource_id``.
    """
    if not claim:
        return None
    raw_scopes = claim.get("scope")
    scopes = tuple(
        scope
        for scope in (raw_scopes if isinstance(raw_scopes, list) else [])
        if isinstance(scope, str)
    )
    if SCOPE_SCORE not in scopes:
        return None
    lineitem = claim.get("lineitem")
    lineitems = claim.get("lineitems")
    lineitem_url = lineitem if isinstance(lineitem, str) and lineitem else None
    lineitems_url = lineitems if isinstance(lineitems, str) and lineitems else None
    if lineitem_url is None and (
        lineitems_url is None
        or (SCOPE_LINEITEM not in scopes and SCOPE_LINEITEM_READONLY not in scopes)
    ):
        return None
    return LineItemSpec(
        label=label,
        score_maximum=score_maximum,
        granted_scopes=scopes,
        lineitem_url=lineitem_url,
        lineitems_url=lineitems_url,
        resource_id=resource_id,
        tag=tag,
        platform_resource_link_id=platform_resource_link_id,
    )
