"""The demo platform's LTI Advantage services: its OAuth 2 token endpoint, Assignment and Grade
Services 2.0 (line items, scores, results) and Names and Role Provisioning Services 2.0, shaped
like Moodle 4.5's ``token.php`` and ``services.php``, and the gradebook they fill.

- Token (Security Framework 1.0 §4.1): client-credentials grant with a JWT assertion signed by
  the tool: ``iss`` = ``sub`` = the client id, ``aud`` = the token URL, RS256, a ``kid`` the
  tool publishes, a ``jti`` used once. The answer is JSON sent as ``text/html``, as Moodle's.
  The tool's public keys are read in-process (``lti.keys``) rather than fetched from the tool's
  JWKS URL: the tool and the demo platform share one server, and a request from the server to
  itself would wait on the same worker threads that serve it.
- AGS (https://www.imsglobal.org/spec/lti-ags/v2p0/): scores are refused (400) for people who
  cannot be graded (the instructor, unknown users), as Moodle does, and results are rescaled to
  the line item's maximum (7.5 / 10 posted to a line item out of 100 is stored as 75).
- NRPS (https://www.imsglobal.org/spec/lti-nrps/v2p0/): the course's members with Moodle's
  short role names.

The gradebook lives in a JSON file beside the demo's database (``DemoGradebook``), locked while
written, so it survives a restart and is shared by the processes of one demo.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.demo.platform import AGS_SCOPES, DemoPerson, DemoPlatform
from adaptive_lti.demo.store import LockedJsonDocument

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCOPE_LINEITEM = AGS_SCOPES[0]
SCOPE_LINEITEM_READONLY = AGS_SCOPES[1]
SCOPE_RESULT_READONLY = AGS_SCOPES[2]
SCOPE_SCORE = AGS_SCOPES[3]
SUPPORTED_SCOPES = (*AGS_SCOPES, NRPS_SCOPE)
ACCESS_TOKEN_LIFETIME_SECONDS = 3600
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Leeway for the assertion's times, and the longest-lived assertion accepted.
ASSERTION_LEEWAY_SECONDS = 5
ASSERTION_MAX_LIFETIME_SECONDS = 3600
ACTIVITY_PROGRESS = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING_PROGRESS = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


class ServiceError(AdaptiveLtiError):
    """A service request the demo platform refuses; ``error`` is the OAuth 2 error code for the
    token endpoint (RFC 6749 §5.2) or a short name for AGS/NRPS."""

    def __init__(self, status_code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message}


# --- the token endpoint ---------------------------------------------------------------------------


class AccessTokens:
    """Issues and checks the demo platform's bearer tokens (HMAC-signed, scoped, short-lived).

    ``jti`` values of accepted assertions are remembered until the assertion expires, so an
    assertion is good for one token; that memory is per process, enough for a demo.
    """

    def __init__(self, platform: DemoPlatform, secret_key: str) -> None:
        self._platform = platform
        self._serializer = URLSafeTimedSerializer(
            secret_key, salt="adaptive-lti demo platform token"
        )
        self._seen_assertions: dict[str, int] = {}

    def issue(
        self,
        form: Mapping[str, str],
        tool_jwks: Mapping[str, Any],
        now: int,
        other_client_ids: Collection[str] = (),
    ) -> dict[str, Any]:
        """Answer a token request (RFC 6749 §4.4, RFC 7523 §2.2) or raise ``ServiceError``.

        ``other_client_ids`` are the client ids of the tool's other active registrations here
        (made by dynamic registration), which may ask for tokens too."""
        if form.get("grant_type") != "client_credentials":
            raise ServiceError(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise ServiceError(
                400, "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )
        claims = self._verify_assertion(
            form.get("client_assertion", ""), tool_jwks, now, other_client_ids
        )
        self._remember(claims, now)
        requested = form.get("scope", "").split()
        granted = [scope for scope in requested if scope in SUPPORTED_SCOPES]
        if not granted:
            raise ServiceError(
                400, "invalid_scope", f"none of the requested scopes is offered: {requested}"
            )
        token = self._serializer.dumps(
            {"scopes": granted, "exp": now + ACCESS_TOKEN_LIFETIME_SECONDS}
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
            "scope": " ".join(granted),
        }

    def _verify_assertion(
        self,
        assertion: str,
        tool_jwks: Mapping[str, Any],
        now: int,
        other_client_ids: Collection[str] = (),
    ) -> dict[str, Any]:
        if not assertion:
            raise ServiceError(400, "invalid_request", "client_assertion is missing")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise ServiceError(400, "invalid_client", "client_assertion is not a JWT") from None
        if header.get("alg") != "RS256":
            raise ServiceError(400, "invalid_client", "client_assertion must be signed with RS256")
        kid = header.get("kid")
        jwk = next(
            (key for key in tool_jwks.get("keys", []) if key.get("kid") == kid and kid), None
        )
        if jwk is None:
            raise ServiceError(400, "invalid_client", f"the tool publishes no key with kid {kid!r}")
        client_id = self._platform.client_id
        try:
            claimed = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.InvalidTokenError:
            claimed = None
        if isinstance(claimed, str) and claimed in other_client_ids:
            client_id = claimed  # still verified below: signature, iss, sub, aud, times
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                jwt.PyJWK(dict(jwk)),
                algorithms=["RS256"],
                audience=self._platform.token_url,
                issuer=client_id,
                leeway=ASSERTION_LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidTokenError as error:
            raise ServiceError(
                400, "invalid_client", f"client_assertion refused: {error}"
            ) from None
        if claims["sub"] != client_id:
            raise ServiceError(400, "invalid_client", "client_assertion sub must be the client id")
        if int(claims["exp"]) - now > ASSERTION_MAX_LIFETIME_SECONDS:
            raise ServiceError(400, "invalid_client", "client_assertion lives too long")
        return claims

    def _remember(self, claims: Mapping[str, Any], now: int) -> None:
        self._seen_assertions = {
            jti: expiry for jti, expiry in self._seen_assertions.items() if expiry >= now
        }
        jti = str(claims["jti"])
        if jti in self._seen_assertions:
            raise ServiceError(400, "invalid_grant", "this client_assertion (jti) was used already")
        self._seen_assertions[jti] = int(claims["exp"]) + ASSERTION_LEEWAY_SECONDS

    def check(self, authorization: str | None, needed: tuple[str, ...], now: int) -> None:
        """Allow a service call whose bearer token grants one of the ``needed`` scopes."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ServiceError(401, "invalid_token", "an Authorization: Bearer token is required")
        try:
            loaded = self._serializer.loads(token, max_age=ACCESS_TOKEN_LIFETIME_SECONDS)
        except BadSignature:
            raise ServiceError(401, "invalid_token", "the access token is not valid") from None
        if not isinstance(loaded, dict) or int(loaded.get("exp", 0)) < now:
            raise ServiceError(401, "invalid_token", "the access token has expired")
        scopes = loaded.get("scopes", [])
        if not any(scope in scopes for scope in needed):
            raise ServiceError(
                403, "insufficient_scope", f"this call needs one of the scopes {list(needed)}"
            )


# --- the gradebook --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    id: str
    label: str
    score_maximum: float
    resource_link_id: str | None = None
    resource_id: str = ""
    tag: str = ""


@dataclass(frozen=True)
class Result:
    user_id: str
    result_score: float | None
    result_maximum: float
    comment: str
    timestamp: str
    activity_progress: str
    grading_progress: str


class DemoGradebook:
    """Line items and results of the demo course, in a JSON file (locked while changed)."""

    def __init__(self, path: Path, platform: DemoPlatform) -> None:
        self.path = path
        self.platform = platform
        self._document = LockedJsonDocument(path, self._initial)

    def _initial(self) -> dict[str, Any]:
        activity = self.platform.activity
        line_items: dict[str, Any] = {}
        if activity.line_item_id is not None:
            line_items[activity.line_item_id] = {
                "label": activity.title,
                "score_maximum": 100.0,
                "resource_link_id": activity.resource_link_id,
                "resource_id": "",
                "tag": "",
            }
        return {"line_items": line_items, "results": {}}

    def line_items(self) -> list[LineItem]:
        with self._document.locked(write=False) as data:
            return [_line_item(item_id, item) for item_id, item in data["line_items"].items()]

    def line_item(self, item_id: str) -> LineItem:
        for item in self.line_items():
            if item.id == item_id:
                return item
        raise ServiceError(404, "not_found", f"the course has no line item {item_id!r}")

    def add_line_item(self, body: Mapping[str, Any]) -> LineItem:
        label = body.get("label")
        maximum = _number(body.get("scoreMaximum"))
        if not isinstance(label, str) or not label.strip():
            raise ServiceError(400, "invalid_request", "a line item needs a label")
        if maximum is None or maximum <= 0:
            raise ServiceError(400, "invalid_request", "scoreMaximum must be a number above 0")
        with self._document.locked(write=True) as data:
            item_id = str(max((int(key) for key in data["line_items"]), default=0) + 1)
            data["line_items"][item_id] = {
                "label": label.strip()[:255],
                "score_maximum": maximum,
                "resource_link_id": _optional_text(body.get("resourceLinkId")),
                "resource_id": str(body.get("resourceId") or "")[:255],
                "tag": str(body.get("tag") or "")[:255],
            }
            return _line_item(item_id, data["line_items"][item_id])

    def record_score(self, item_id: str, body: Mapping[str, Any], gradable: set[str]) -> Result:
        """Store a score (AGS §3.4) as Moodle does: rescaled to the line item's maximum."""
        user_id = body.get("userId")
        if not isinstance(user_id, str) or not user_id:
            raise ServiceError(400, "invalid_request", "the score has no userId")
        if user_id not in gradable:
            # Moodle answers 400 for users who cannot be graded (teachers, non-enrolled).
            raise ServiceError(
                400, "invalid_request", f"user {user_id!r} cannot be graded in this course"
            )
        activity = body.get("activityProgress")
        grading = body.get("gradingProgress")
        timestamp = body.get("timestamp")
        if activity not in ACTIVITY_PROGRESS or grading not in GRADING_PROGRESS:
            raise ServiceError(
                400,
                "invalid_request",
                "activityProgress and gradingProgress must be values of AGS §3.4",
            )
        if not isinstance(timestamp, str) or not timestamp:
            raise ServiceError(400, "invalid_request", "the score has no timestamp")
        given, maximum = _number(body.get("scoreGiven")), _number(body.get("scoreMaximum"))
        if "scoreGiven" in body and (given is None or maximum is None or maximum <= 0 or given < 0):
            raise ServiceError(
                400, "invalid_request", "scoreGiven needs a scoreMaximum above 0, both numbers"
            )
        item = self.line_item(item_id)
        score = None
        if given is not None and maximum is not None:
            score = given / maximum * item.score_maximum
        result = Result(
            user_id=user_id,
            result_score=score,
            result_maximum=item.score_maximum,
            comment=str(body.get("comment") or "")[:1000],
            timestamp=timestamp,
            activity_progress=str(activity),
            grading_progress=str(grading),
        )
        with self._document.locked(write=True) as data:
            data["results"].setdefault(item_id, {})[user_id] = {
                "result_score": result.result_score,
                "comment": result.comment,
                "timestamp": result.timestamp,
                "activity_progress": result.activity_progress,
                "grading_progress": result.grading_progress,
            }
        return result

    def results(self, item_id: str, user_id: str | None = None) -> list[Result]:
        item = self.line_item(item_id)
        with self._document.locked(write=False) as data:
            stored = data["results"].get(item_id, {})
        return [
            Result(
                user_id=uid,
                result_score=value["result_score"],
                result_maximum=item.score_maximum,
                comment=value["comment"],
                timestamp=value["timestamp"],
                activity_progress=value["activity_progress"],
                grading_progress=value["grading_progress"],
            )
            for uid, value in sorted(stored.items())
            if user_id is None or uid == user_id
        ]


def _line_item(item_id: str, stored: Mapping[str, Any]) -> LineItem:
    return LineItem(
        id=item_id,
        label=stored["label"],
        score_maximum=float(stored["score_maximum"]),
        resource_link_id=stored.get("resource_link_id"),
        resource_id=stored.get("resource_id", ""),
        tag=stored.get("tag", ""),
    )


def _number(value: Any) -> float | None:
    """A finite JSON number as a float; None for anything else (booleans, strings, null)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _optional_text(value: Any) -> str | None:
    return str(value)[:255] if value not in (None, "") else None


# --- JSON shapes (as Moodle's services.php answers) ----------------------------------------------


class ServiceUrls:
    """The service URLs of the demo platform, the same the id_token's claims carry."""

    def __init__(self, platform: DemoPlatform) -> None:
        self.platform = platform
        self.base = f"{platform.issuer}/services/{platform.course.id}"
        self.query = f"?type_id={platform.deployment_id}"

    def line_items(self) -> str:
        return f"{self.base}/lineitems{self.query}"

    def line_item(self, item_id: str) -> str:
        return f"{self.base}/lineitems/{item_id}/lineitem{self.query}"

    def results(self, item_id: str, user_id: str) -> str:
        return f"{self.base}/lineitems/{item_id}/lineitem/results{self.query}&user_id={user_id}"

    def memberships(self) -> str:
        return (
            f"{self.platform.issuer}/services/CourseSection/{self.platform.course.id}"
            f"/bindings/{self.platform.deployment_id}/memberships"
        )


def line_item_json(urls: ServiceUrls, item: LineItem) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": urls.line_item(item.id),
        "label": item.label,
        "scoreMaximum": item.score_maximum,
        "resourceId": item.resource_id,
        "tag": item.tag,
    }
    if item.resource_link_id:
        body["resourceLinkId"] = item.resource_link_id
        body["ltiLinkId"] = item.resource_link_id
    return body


def result_json(urls: ServiceUrls, item: LineItem, result: Result) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": urls.results(item.id, result.user_id),
        "scoreOf": urls.line_item(item.id),
        "userId": result.user_id,
        "resultMaximum": result.result_maximum,
        "comment": result.comment,
        "timestamp": result.timestamp,
    }
    if result.result_score is not None:
        body["resultScore"] = result.result_score
    return body


def memberships_json(urls: ServiceUrls, people: tuple[DemoPerson, ...]) -> dict[str, Any]:
    """NRPS 2.0 membership container, with Moodle's short role names (``Learner``)."""
    platform = urls.platform
    members = [
        {
            "status": "Active",
            "user_id": person.user_id,
            "name": person.name,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "email": person.email,
            "ext_user_username": person.username,
            "lis_person_sourcedid": f"SIS-{person.username}",
            "roles": [role.rpartition("#")[2] for role in person.roles],
        }
        for person in people
    ]
    return {
        "id": urls.memberships(),
        "context": {
            "id": platform.course.id,
            "label": platform.course.label,
            "title": platform.course.title,
        },
        "members": members,
    }
