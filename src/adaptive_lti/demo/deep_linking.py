"""The demo platform's side of LTI Deep Linking 2.0 (https://www.imsglobal.org/spec/lti-dl/v2p0/),
as Moodle 4.5's ``mod/lti/contentitem.php`` and ``contentitem_return.php`` do it.

A teacher presses "Add an activity" (Moodle's activity chooser): the platform starts an OIDC
login with ``lti_message_hint`` = course module 0 and answers the tool's authentication request
with an ``LtiDeepLinkingRequest`` (``DemoPlatform.deep_linking_claims``) whose
``deep_link_return_url`` carries, like Moodle's ``sesskey``, a signed value naming the teacher who
asked. The tool sends the browser back there with a form POST of one field, ``JWT`` (§4.5), which
this module verifies (§4.5.1, lti-security.md row 18):

- RS256 with a ``kid`` the tool publishes (its JWKS, read in-process: see
  ``demo.services`` for why the server does not fetch its own URL);
- ``iss`` = the client id the platform gave the tool, ``aud`` = the platform's issuer;
- ``iat``/``exp`` present and current, a ``nonce`` never seen before (kept until it expires);
- ``message_type`` = ``LtiDeepLinkingResponse``, ``version`` 1.3.0, the platform's
  ``deployment_id``; no ``data`` is expected back because Moodle sends none.

Each ``ltiResourceLink`` item becomes a new activity of the course (a resource link id, the
item's title and custom parameters, and a gradebook column of ``lineItem.scoreMaximum`` when
the item asks for one), kept in the demo platform's store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer

from adaptive_lti.demo.platform import (
    LTI_CLAIM,
    DemoActivity,
    DemoPerson,
    DemoPlatform,
    DemoPlatformError,
)
from adaptive_lti.demo.store import DemoPlatformStore

CONTENT_ITEMS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DATA_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
MESSAGE_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
ERROR_MESSAGE_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
RESPONSE_MESSAGE_TYPE = "LtiDeepLinkingResponse"
RESOURCE_LINK_TYPE = "ltiResourceLink"
# The teacher may take a while to pick in the tool: Moodle's sesskey lasts the whole session.
RETURN_SESSION_MAX_AGE_SECONDS = 3600
# Clock difference allowed between the tool and the platform.
LEEWAY_SECONDS = 5
# A response that claims to live longer than this is refused (§4.5.1 asks for a short exp).
MAX_RESPONSE_LIFETIME_SECONDS = 3600
MAX_ITEMS = 20
MAX_TITLE_LENGTH = 255
MAX_CUSTOM_PARAMETERS = 50

_HINT = "Go back to the demo platform's home page and add the activity again."


class DeepLinkingResponseError(DemoPlatformError):
    """The tool's deep linking response cannot be accepted; nothing was added to the course."""


# --- the return address (Moodle's contentitem_return.php?course=..&id=..&sesskey=..) -------------


class ReturnSessionCodec:
    """Signs the user id of the teacher who started a deep linking request into the return URL,
    as Moodle's ``sesskey`` ties the return to the session that asked."""

    def __init__(self, secret_key: str, max_age: int = RETURN_SESSION_MAX_AGE_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret_key, salt="adaptive-lti demo platform deep linking return"
        )
        self._max_age = max_age

    def return_url(self, platform: DemoPlatform, person: DemoPerson) -> str:
        query = urlencode(
            {
                "course": platform.course.id,
                "id": platform.deployment_id,
                "sesskey": self._serializer.dumps(person.user_id),
            }
        )
        return f"{platform.issuer}/deep-linking/return?{query}"

    def user_id(self, sesskey: str) -> str:
        """The teacher who asked, or ``DeepLinkingResponseError`` for a forged or old value."""
        try:
            loaded = self._serializer.loads(sesskey, max_age=self._max_age)
        except BadSignature:  # also SignatureExpired
            raise DeepLinkingResponseError(
                "The deep linking return does not come from a request this platform made, or the "
                f"request is older than {self._max_age // 60} minutes.",
                hint=_HINT,
            ) from None
        if not isinstance(loaded, str):
            raise DeepLinkingResponseError("The deep linking return is malformed.", hint=_HINT)
        return loaded


# --- verifying the response -----------------------------------------------------------------------


@dataclass(frozen=True)
class LineItemSpec:
    score_maximum: float
    label: str
    resource_id: str
    tag: str


@dataclass(frozen=True)
class ResourceLinkSpec:
    """An ``ltiResourceLink`` content item (§3.1), checked."""

    title: str
    text: str
    url: str
    custom: dict[str, str]
    line_item: LineItemSpec | None


@dataclass(frozen=True)
class VerifiedResponse:
    items: tuple[ResourceLinkSpec, ...]
    message: str | None  # the tool's msg for the teacher
    error_message: str | None  # the tool's errormsg


def _refuse(message: str, hint: str = _HINT) -> DeepLinkingResponseError:
    return DeepLinkingResponseError(message, hint=hint)


def verify_response(
    platform: DemoPlatform,
    token: str,
    tool_jwks: Mapping[str, Any],
    now: int,
    store: DemoPlatformStore,
) -> VerifiedResponse:
    """Verify the tool's ``LtiDeepLinkingResponse`` (§4.5) and record its nonce as used.

    Raises ``DeepLinkingResponseError`` saying what is wrong; a refused response leaves the
    store unchanged.
    """
    if not token:
        raise _refuse("The tool sent no JWT back (the form field 'JWT' is empty or missing).")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _refuse("What the tool sent back is not a JWT.") from None
    if header.get("alg") != "RS256":
        raise _refuse(f"The tool's response is signed with {header.get('alg')!r}, not RS256.")
    kid = header.get("kid")
    jwk = next((key for key in tool_jwks.get("keys", []) if kid and key.get("kid") == kid), None)
    if jwk is None:
        raise _refuse(
            f"The tool's response is signed with a key (kid {kid!r}) its key set does not hold.",
            hint="The tool's key may have changed: check its /.well-known/jwks.json, then add "
            "the activity again.",
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(dict(jwk)),
            algorithms=["RS256"],
            audience=platform.issuer,
            issuer=platform.client_id,
            leeway=LEEWAY_SECONDS,
            # Times are checked below against the platform's clock (``now``), which the demo
            # may run ahead of the machine's.
            options={
                "require": ["iss", "aud", "exp", "iat", "nonce"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise _refuse("The tool's response does not carry a valid signature.") from None
    except jwt.InvalidAudienceError:
        raise _refuse(
            f"The tool's response is addressed to another platform (aud is not {platform.issuer})."
        ) from None
    except jwt.InvalidIssuerError:
        raise _refuse(
            f"The tool's response is not issued by the client id {platform.client_id!r} this "
            "platform gave the tool."
        ) from None
    except jwt.InvalidTokenError as error:
        raise _refuse(f"The tool's response was refused: {error}.") from None
    for name in ("exp", "iat"):
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(f"The tool's response has an {name} that is not a number of seconds.")
    if int(claims["exp"]) + LEEWAY_SECONDS < now:
        raise _refuse("The tool's response has expired (its exp is in the past).")
    if int(claims["iat"]) - LEEWAY_SECONDS > now:
        raise _refuse("The tool's response was issued in the future (check the clocks).")
    if int(claims["exp"]) - now > MAX_RESPONSE_LIFETIME_SECONDS:
        raise _refuse("The tool's response lives too long (exp is more than an hour away).")
    _check_claim(claims, LTI_CLAIM + "message_type", RESPONSE_MESSAGE_TYPE)
    _check_claim(claims, LTI_CLAIM + "version", "1.3.0")
    _check_claim(claims, LTI_CLAIM + "deployment_id", platform.deployment_id)
    if DATA_CLAIM in claims:
        raise _refuse("The tool's response carries a 'data' claim, but the request sent none.")
    items = _resource_links(claims.get(CONTENT_ITEMS_CLAIM), platform)
    if not items:
        said = _optional_text(claims.get(ERROR_MESSAGE_CLAIM)) or _optional_text(
            claims.get(MESSAGE_CLAIM)
        )
        raise _refuse(
            "The tool returned no activity to add (the teacher cancelled, or the tool found "
            "nothing to offer)." + (f" The tool said: {said}" if said else ""),
            hint="Go back to the demo platform's home page; press 'Add an activity' again to "
            "pick a design.",
        )
    nonce = str(claims["nonce"])
    if not nonce:
        raise _refuse("The tool's response has an empty nonce.")
    with store.locked(write=True) as data:
        seen: dict[str, int] = {
            value: expiry
            for value, expiry in data["deep_linking_nonces"].items()
            if expiry >= now - LEEWAY_SECONDS
        }
        if nonce in seen:
            raise _refuse(
                "This deep linking response was received already (its nonce was used): a "
                "response is good once.",
                hint="Go back to the demo platform's home page: the activity may already be there.",
            )
        seen[nonce] = int(claims["exp"])
        data["deep_linking_nonces"] = seen
    return VerifiedResponse(
        items=items,
        message=_optional_text(claims.get(MESSAGE_CLAIM)),
        error_message=_optional_text(claims.get(ERROR_MESSAGE_CLAIM)),
    )


def _check_claim(claims: Mapping[str, Any], name: str, expected: str) -> None:
    value = claims.get(name)
    if value != expected:
        short = name.rsplit("/", 1)[-1]
        raise _refuse(
            f"The tool's response has {short} {value!r}; the platform expects {expected!r}."
        )


def _optional_text(value: Any) -> str | None:
    return str(value)[:1000] if isinstance(value, str) and value else None


def _resource_links(value: Any, platform: DemoPlatform) -> tuple[ResourceLinkSpec, ...]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise _refuse("The tool's content_items claim is not a list.")
    if len(value) > MAX_ITEMS:
        raise _refuse(
            f"The tool returned {len(value)} items; the platform takes {MAX_ITEMS} at most."
        )
    links: list[ResourceLinkSpec] = []
    for position, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise _refuse(f"Content item {position} is not an object.")
        kind = item.get("type")
        if kind != RESOURCE_LINK_TYPE:
            # The request's accept_types was [ltiResourceLink] only.
            raise _refuse(
                f"Content item {position} has type {kind!r}; this platform asked for "
                f"{RESOURCE_LINK_TYPE!r} only."
            )
        links.append(_resource_link(item, position, platform))
    return tuple(links)


def _resource_link(
    item: Mapping[str, Any], position: int, platform: DemoPlatform
) -> ResourceLinkSpec:
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        raise _refuse(f"Content item {position} has a title that is not text.")
    url = item.get("url") or platform.tool_launch_url
    tool_origin = urlsplit(platform.tool_launch_url)
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or (parts.scheme, parts.netloc) != (tool_origin.scheme, tool_origin.netloc):
        # Moodle launches an item's URL with the tool's registration: it must be the tool's.
        raise _refuse(
            f"Content item {position} links to {str(url)[:200]!r}, which is not on the tool's "
            f"site ({tool_origin.scheme}://{tool_origin.netloc})."
        )
    custom = item.get("custom") or {}
    if not isinstance(custom, dict) or len(custom) > MAX_CUSTOM_PARAMETERS:
        raise _refuse(f"Content item {position} has custom parameters that are not an object.")
    if not all(isinstance(value, str) for value in custom.values()):
        # LTI Core §5.4.6 / DL §3.1: custom parameter values are strings.
        raise _refuse(f"Content item {position} has custom parameter values that are not strings.")
    text = item.get("text")
    return ResourceLinkSpec(
        title=(title or "").strip()[:MAX_TITLE_LENGTH] or "External tool",
        text=text.strip()[:2000] if isinstance(text, str) else "",
        url=str(url),
        custom={str(name)[:100]: value[:1000] for name, value in custom.items()},
        line_item=_line_item(item.get("lineItem"), position),
    )


def _line_item(value: Any, position: int) -> LineItemSpec | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _refuse(f"Content item {position} has a lineItem that is not an object.")
    maximum = value.get("scoreMaximum")
    if (
        isinstance(maximum, bool)
        or not isinstance(maximum, int | float)
        or not math.isfinite(maximum)
        or maximum <= 0
    ):
        raise _refuse(f"Content item {position} has a lineItem whose scoreMaximum is not above 0.")
    return LineItemSpec(
        score_maximum=float(maximum),
        label=str(value.get("label") or "")[:MAX_TITLE_LENGTH],
        resource_id=str(value.get("resourceId") or "")[:MAX_TITLE_LENGTH],
        tag=str(value.get("tag") or "")[:MAX_TITLE_LENGTH],
    )


# --- the course's added activities ----------------------------------------------------------------


def added_activities(store: DemoPlatformStore) -> list[DemoActivity]:
    """The activities teachers added by deep linking, oldest first."""
    with store.locked(write=False) as data:
        stored = list(data["activities"])
    return [_activity(entry) for entry in stored]


def _activity(entry: Mapping[str, Any]) -> DemoActivity:
    return DemoActivity(
        course_module_id=str(entry["course_module_id"]),
        resource_link_id=str(entry["resource_link_id"]),
        line_item_id=entry.get("line_item_id"),
        title=str(entry["title"]),
        description=str(entry.get("description", "")),
        custom=dict(entry.get("custom", {})),
    )


# Creates a gradebook column and returns its id (DemoGradebook.add_line_item, by the caller).
AddLineItem = Callable[[Mapping[str, Any]], str]


def add_activities(
    store: DemoPlatformStore,
    platform: DemoPlatform,
    items: Sequence[ResourceLinkSpec],
    added_by: DemoPerson,
    now: datetime,
    add_line_item: AddLineItem,
) -> list[DemoActivity]:
    """Create a course activity per item, as Moodle's "add activity" form does when saved:
    new course module and LTI instance ids, the item's custom parameters, a gradebook column
    when the item asks for one."""
    if not items:
        raise _refuse(
            "The tool returned no activity to add (the teacher cancelled, or the tool found "
            "nothing to offer).",
            hint="Go back to the demo platform's home page; press 'Add an activity' again to "
            "pick a design.",
        )
    created: list[DemoActivity] = []
    with store.locked(write=True) as data:
        stored: list[dict[str, Any]] = data["activities"]
        taken_modules = [int(platform.activity.course_module_id)]
        taken_links = [int(platform.activity.resource_link_id)]
        taken_modules += [int(entry["course_module_id"]) for entry in stored]
        taken_links += [int(entry["resource_link_id"]) for entry in stored]
        for item in items:
            resource_link_id = str(max(taken_links) + 1)
            course_module_id = str(max(taken_modules) + 1)
            taken_links.append(int(resource_link_id))
            taken_modules.append(int(course_module_id))
            line_item_id = None
            if item.line_item is not None:
                line_item_id = add_line_item(
                    {
                        "label": item.line_item.label or item.title,
                        "scoreMaximum": item.line_item.score_maximum,
                        "resourceLinkId": resource_link_id,
                        "resourceId": item.line_item.resource_id,
                        "tag": item.line_item.tag,
                    }
                )
            entry = {
                "course_module_id": course_module_id,
                "resource_link_id": resource_link_id,
                "line_item_id": line_item_id,
                "title": item.title,
                "description": item.text,
                "custom": item.custom,
                "score_maximum": item.line_item.score_maximum if item.line_item else None,
                "added_by": added_by.name,
                "added_at": now.isoformat(),
            }
            stored.append(entry)
            created.append(_activity(entry))
    return created
