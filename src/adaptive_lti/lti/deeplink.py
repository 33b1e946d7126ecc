"""LTI Deep Linking 2.0: read the request's settings, build and sign the response.

Spec: https://www.imsglobal.org/spec/lti-dl/v2p0/. The platform launches the tool with an
``LtiDeepLinkingRequest`` (§4.4) whose ``deep_linking_settings`` claim says where to send the
answer and what content it accepts; the tool lets the instructor pick, then sends the browser back
with a form POST of one field, ``JWT``, to ``deep_link_return_url`` (§4.5). That JWT is signed by
the tool with its own key (RS256, ``kid`` in the header, the key published in the tool's JWKS) and
carries ``iss`` = the tool's client id, ``aud`` = the platform's issuer, a fresh ``nonce`` and a
short ``exp`` (§4.5.1; lti-security.md row 18).

Moodle sends no ``data``; when a platform does, it is echoed verbatim (§4.4.1 "data"). Moodle
fills its "add activity" form from the returned item: title, URL, custom parameters and
``lineItem.scoreMaximum`` as the maximum grade.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import LaunchContext
from adaptive_lti.lti.keys import SIGNING_ALGORITHM, SigningKey

# §4.4.1 / §4.5 claim names.
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
VERSION = "https://purl.imsglobal.org/spec/lti/claim/version"
DEPLOYMENT_ID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
MESSAGE = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
LOG = "https://purl.imsglobal.org/spec/lti-dl/claim/log"
ERROR_MESSAGE = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
ERROR_LOG = "https://purl.imsglobal.org/spec/lti-dl/claim/errorlog"

RESPONSE_MESSAGE_TYPE = "LtiDeepLinkingResponse"
LTI_VERSION = "1.3.0"
RESOURCE_LINK_TYPE = "ltiResourceLink"  # §3.1 content item type
# AGS 2.0 §3.1: the scope that lets the tool (and so a deep-linked item) create line items.
LINE_ITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
# The response is posted by the browser right away: a few minutes covers a slow network.
RESPONSE_LIFETIME = timedelta(minutes=5)

_CHECK = "deep linking settings"
_HINT = "Add the activity again from the course page; if it keeps failing, tell the administrator."


def _refuse(message: str, hint: str = _HINT) -> LaunchError:
    # Row 18 of lti-security.md: a deep linking request without usable settings is a 400.
    return LaunchError(_CHECK, message, hint=hint, status_code=400)


@dataclass(frozen=True)
class DeepLinkingRequest:
    """What a deep linking request asks for (§4.4.1), checked."""

    return_url: str
    accept_types: tuple[str, ...]
    accept_multiple: bool
    accept_presentation_document_targets: tuple[str, ...]
    # Opaque value to echo back, when the platform sent one (Moodle does not).
    data: str | None
    title: str | None
    text: str | None
    # §4.4.1 accept_lineitem: False means the platform ignores line items; None, not said.
    accept_line_item: bool | None = None


def read_deep_linking_request(launch: LaunchContext) -> DeepLinkingRequest:
    """Check the settings claim of a deep linking launch and return them.

    Refuses (400) a launch that is not a deep linking request, lacks ``deep_link_return_url`` or
    ``accept_types``, has a return URL that is not an absolute http(s) URL, or does not accept LTI
    resource links (the only kind of item this tool returns).
    """
    if not launch.is_deep_linking:
        raise _refuse(
            f"This page answers deep linking requests; the launch was a {launch.message_type}.",
            "Add the tool to the course from the activity chooser to pick a design.",
        )
    settings: Mapping[str, Any] = launch.deep_linking_settings or {}
    if not settings:
        raise _refuse("The deep linking request carries no deep_linking_settings claim.")
    return_url = settings.get("deep_link_return_url")
    if not isinstance(return_url, str) or not return_url.strip():
        raise _refuse("The deep linking settings have no deep_link_return_url.")
    parts = urlsplit(return_url)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise _refuse(
            f"The deep_link_return_url {return_url[:200]!r} is not an absolute http(s) URL."
        )
    accept_types = settings.get("accept_types")
    if not isinstance(accept_types, list) or not accept_types:
        raise _refuse("The deep linking settings have no accept_types.")
    accepted = tuple(str(kind) for kind in accept_types)
    if RESOURCE_LINK_TYPE not in accepted:
        raise _refuse(
            f"The platform accepts only {', '.join(accepted)} here, and this tool returns LTI "
            f"resource links ({RESOURCE_LINK_TYPE}).",
            "Add the tool as an activity (the activity chooser), not from an editor or another "
            "placement.",
        )
    targets = settings.get("accept_presentation_document_targets")
    data = settings.get("data")
    title = settings.get("title")
    text = settings.get("text")
    return DeepLinkingRequest(
        return_url=return_url,
        accept_types=accepted,
        accept_multiple=settings.get("accept_multiple") is not False,
        accept_presentation_document_targets=tuple(str(t) for t in targets)
        if isinstance(targets, list)
        else (),
        data=data if isinstance(data, str) else None,
        title=title if isinstance(title, str) and title else None,
        text=text if isinstance(text, str) and text else None,
        accept_line_item=settings["accept_lineitem"]
        if isinstance(settings.get("accept_lineitem"), bool)
        else None,
    )


def can_create_line_items(launch: LaunchContext) -> bool:
    """AGS 2.0 §3.1: the platform lets the tool declare line items only with the lineitem scope;
    and a deep linking request may say it ignores them (DL 2.0 §4.4.1 ``accept_lineitem``)."""
    settings = launch.deep_linking_settings or {}
    if settings.get("accept_lineitem") is False:
        return False
    endpoint = launch.ags_endpoint or {}
    scopes = endpoint.get("scope")
    return isinstance(scopes, list | tuple) and LINE_ITEM_SCOPE in scopes


@dataclass(frozen=True)
class LineItemRequest:
    """§3.2 ``lineItem`` of an ``ltiResourceLink``: the gradebook column the platform creates."""

    score_maximum: float
    label: str
    resource_id: str
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "scoreMaximum": self.score_maximum,
            "label": self.label,
            "resourceId": self.resource_id,
        }
        if self.tag:
            item["tag"] = self.tag
        return item


@dataclass(frozen=True)
class ResourceLinkItem:
    """§3.2 an ``ltiResourceLink`` content item."""

    title: str
    url: str
    custom: Mapping[str, str]
    text: str | None = None
    line_item: LineItemRequest | None = None

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": RESOURCE_LINK_TYPE,
            "title": self.title,
            "url": self.url,
            "custom": dict(self.custom),
        }
        if self.text:
            item["text"] = self.text
        if self.line_item is not None:
            item["lineItem"] = self.line_item.to_json()
        return item


def response_claims(
    launch: LaunchContext,
    request: DeepLinkingRequest,
    items: list[ResourceLinkItem],
    *,
    now: datetime,
    nonce: str | None = None,
    message: str | None = None,
    log: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """The claims of the ``LtiDeepLinkingResponse`` JWT (§4.5)."""
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        # §4.5.1: the tool is the issuer (its client id), the platform the audience.
        "iss": launch.client_id,
        "aud": [launch.issuer],
        "iat": issued_at,
        "exp": issued_at + int(RESPONSE_LIFETIME.total_seconds()),
        "nonce": nonce or secrets.token_urlsafe(24),
        DEPLOYMENT_ID: launch.deployment_id,
        MESSAGE_TYPE: RESPONSE_MESSAGE_TYPE,
        VERSION: LTI_VERSION,
        CONTENT_ITEMS: [item.to_json() for item in items],
    }
    if request.data is not None:
        claims[DATA] = request.data
    if message:
        claims[MESSAGE] = message
    if log:
        claims[LOG] = log
    if error_message:
        claims[ERROR_MESSAGE] = error_message
    return claims


def sign_response(claims: Mapping[str, Any], key: SigningKey) -> str:
    """Sign the response with the tool's active key; the platform verifies it with our JWKS."""
    return jwt.encode(
        dict(claims),
        key.private_key,
        algorithm=SIGNING_ALGORITHM,
        headers={"kid": key.kid, "typ": "JWT"},
    )


@dataclass(frozen=True)
class DeepLinkingReturn:
    """The auto-submitting form that takes the browser back to the platform (§4.5)."""

    return_url: str
    jwt: str

    @property
    def fields(self) -> dict[str, str]:
        return {"JWT": self.jwt}


def build_return(
    launch: LaunchContext,
    request: DeepLinkingRequest,
    items: list[ResourceLinkItem],
    key: SigningKey,
    *,
    now: datetime,
    message: str | None = None,
    log: str | None = None,
) -> DeepLinkingReturn:
    claims = response_claims(launch, request, items, now=now, message=message, log=log)
    return DeepLinkingReturn(request.return_url, sign_response(claims, key))
