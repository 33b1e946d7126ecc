"""LTI message claims: what a verified id_token must carry, and its typed ``LaunchContext``.

``check_message_claims`` enforces the claim rules of LTI Core 1.3 §5 (required message claims)
and LTI Deep Linking 2.0 §4.4 on a token whose signature, issuer, audience and times have
already been checked (``lti/validation.py``); ``parse_launch_context`` then reads it. Unknown
claims are ignored (§5.4: "tools should ignore claims they do not understand").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import (
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    SUPPORTED_MESSAGE_TYPES,
    CourseContext,
    LaunchContext,
    Person,
    ResourceLinkInfo,
    normalise_context_type,
    normalise_role,
)

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
VERSION = LTI + "version"  # §5.3.2
MESSAGE_TYPE = LTI + "message_type"  # §5.3.1
DEPLOYMENT_ID = LTI + "deployment_id"  # §5.3.3
TARGET_LINK_URI = LTI + "target_link_uri"  # §5.3.4
RESOURCE_LINK = LTI + "resource_link"  # §5.3.5
ROLES = LTI + "roles"  # §5.3.7
CONTEXT = LTI + "context"  # §5.4.1
TOOL_PLATFORM = LTI + "tool_platform"  # §5.4.2
LAUNCH_PRESENTATION = LTI + "launch_presentation"  # §5.4.4
LIS = LTI + "lis"  # §5.4.5
CUSTOM = LTI + "custom"  # §5.4.6
EXT = LTI + "ext"  # Moodle's vendor extension (user_username, lms)
LTI1P1 = LTI + "lti1p1"  # LTI 1.1 migration claim
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
BASIC_OUTCOME = "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome"  # Moodle's lti-bos

# Limits that fit the columns the launch's strings are stored in (db/tables.py): ids are
# String(255), the locale String(64); names, email, titles and custom values are Text, kept to
# MAX_CLAIM_TEXT. A longer value is refused, not cut: two ids cut to one would be one course.
MAX_ID_CHARS = 255
MAX_LOCALE_CHARS = 64
MAX_CLAIM_TEXT = 4096
# Characters no database column takes: NUL (PostgreSQL refuses it in text) and lone surrogates
# (JSON's "\ud800", which no UTF-8 database can store).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_CLAIM_DEPTH = 32


def _bad(check: str, message: str, hint: str = "") -> LaunchError:
    return LaunchError(
        check,
        message,
        hint=hint
        or "The platform sent an id_token this tool cannot accept; tell its administrator.",
        status_code=400,
    )


def _text(value: Any) -> str | None:
    """A claim that should be a string: other JSON values are refused by returning None."""
    if isinstance(value, str):
        return value[:MAX_CLAIM_TEXT]
    return None


def _object(claims: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = claims.get(name)
    return value if isinstance(value, dict) else None


def check_claim_strings(claims: Mapping[str, Any], where: str = "id_token") -> None:
    """Refuse a token with a NUL character or a lone surrogate in any claim name or string
    value, at any depth: run on the untrusted payload, before it names anything to look up."""

    def visit(value: Any, path: str, depth: int) -> None:
        if isinstance(value, str):
            found = UNSTORABLE.search(value)
            if found is not None:
                what = "a NUL character (U+0000)" if found.group() == "\x00" else "a lone surrogate"
                raise _bad(
                    "claim text",
                    f"The {where}'s claim {path[-120:]!r} contains {what}, which the tool "
                    "cannot store.",
                )
        elif depth > MAX_CLAIM_DEPTH:
            raise _bad("claim text", f"The {where}'s claims are nested too deeply.")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(key, f"{path}.{key}" if path else str(key), depth + 1)
                visit(item, f"{path}.{key}" if path else str(key), depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]", depth + 1)

    visit(dict(claims), "", 0)


def _short_name(claim: str) -> str:
    return claim.removeprefix(LTI)


def _check_length(value: Any, claim: str, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise _bad(
            "claim length",
            f"The id_token's claim {_short_name(claim)!r} is {len(value):,} characters long; "
            f"the tool accepts at most {limit:,}.",
        )


def check_claim_lengths(claims: Mapping[str, Any]) -> None:
    """Every string the launch stores fits its column (see MAX_ID_CHARS and the others)."""
    for name in ("sub", "given_name", "family_name", "name", "email"):
        _check_length(claims.get(name), name, MAX_ID_CHARS if name == "sub" else MAX_CLAIM_TEXT)
    _check_length(claims.get(DEPLOYMENT_ID), DEPLOYMENT_ID, MAX_ID_CHARS)
    for claim, fields in (
        (CONTEXT, {"id": MAX_ID_CHARS, "label": MAX_CLAIM_TEXT, "title": MAX_CLAIM_TEXT}),
        (
            RESOURCE_LINK,
            {"id": MAX_ID_CHARS, "title": MAX_CLAIM_TEXT, "description": MAX_CLAIM_TEXT},
        ),
        (LAUNCH_PRESENTATION, {"locale": MAX_LOCALE_CHARS}),
        (LIS, {"person_sourcedid": MAX_CLAIM_TEXT}),
        (EXT, {"user_username": MAX_CLAIM_TEXT}),
    ):
        value = _object(claims, claim)
        for field, limit in fields.items():
            if value is not None:
                _check_length(value.get(field), f"{claim}.{field}", limit)
    custom = _object(claims, CUSTOM)
    for key, item in (custom or {}).items():
        _check_length(key, f"{CUSTOM} parameter name", MAX_ID_CHARS)
        text = item if isinstance(item, str) else json.dumps(item)
        _check_length(text, f"{CUSTOM}.{key[:60]}", MAX_CLAIM_TEXT)


def check_message_claims(claims: Mapping[str, Any]) -> None:
    """Refuse a message that lacks what LTI Core 1.3 §5.3 and Deep Linking §4.4 require."""
    version = claims.get(VERSION)
    if version is None:
        raise _bad("LTI version", "The id_token has no LTI version claim; LTI 1.3 requires 1.3.0.")
    if version != "1.3.0":
        raise _bad(
            "LTI version",
            f"The id_token says LTI version {str(version)[:20]!r}; this tool speaks LTI 1.3.0.",
            "Configure the tool on the platform as an LTI 1.3 (Advantage) tool.",
        )
    message_type = claims.get(MESSAGE_TYPE)
    if not isinstance(message_type, str) or not message_type:
        raise _bad("message type", "The id_token has no LTI message_type claim.")
    if message_type not in SUPPORTED_MESSAGE_TYPES:
        raise _bad(
            "message type",
            f"The message type {message_type[:60]!r} is not one this tool handles "
            f"({', '.join(sorted(SUPPORTED_MESSAGE_TYPES))}).",
        )
    deployment_id = claims.get(DEPLOYMENT_ID)
    if not isinstance(deployment_id, str) or not deployment_id:
        raise _bad("deployment id", "The id_token has no (or an invalid) deployment_id claim.")
    _check_length(deployment_id, DEPLOYMENT_ID, MAX_ID_CHARS)
    target_link_uri = claims.get(TARGET_LINK_URI)
    if not isinstance(target_link_uri, str) or not target_link_uri:
        raise _bad("target link URI", "The id_token has no target_link_uri claim.")
    subject = claims.get("sub")
    _check_length(subject, "sub", MAX_ID_CHARS)
    if not isinstance(subject, str) or not subject:
        raise _bad(
            "user (sub)",
            "The id_token names no user: the 'sub' claim is missing or empty.",
            "This tool needs to know who launches it; anonymous launches are not supported.",
        )
    roles = claims.get(ROLES)
    if roles is None:
        raise _bad("roles", "The id_token has no roles claim (it may be empty, but must be there).")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise _bad("roles", "The roles claim must be a list of strings.")
    context = claims.get(CONTEXT)
    if context is not None and (not isinstance(context, dict) or not _text(context.get("id"))):
        raise _bad("context", "The context claim must be an object with a string 'id'.")
    custom = claims.get(CUSTOM)
    if custom is not None and not isinstance(custom, dict):
        raise _bad("custom parameters", "The custom claim must be an object of strings.")
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not _text(link.get("id")):
            raise _bad(
                "resource link id",
                "A resource link launch must carry resource_link.id; this one does not.",
            )
    if message_type == DEEP_LINKING_REQUEST:
        settings = claims.get(DEEP_LINKING_SETTINGS)
        if not isinstance(settings, dict):
            raise _bad("deep linking settings", "A deep linking request must carry its settings.")
        if not _text(settings.get("deep_link_return_url")):
            raise _bad(
                "deep linking settings", "The deep linking settings have no deep_link_return_url."
            )
        accept_types = settings.get("accept_types")
        if not isinstance(accept_types, list) or not accept_types:
            raise _bad("deep linking settings", "The deep linking settings have no accept_types.")
    check_claim_lengths(claims)


def _custom_strings(custom: Mapping[str, Any] | None) -> dict[str, str]:
    """§5.4.6: custom values are strings; a platform that sends numbers or objects is
    tolerated by keeping their JSON text, so nothing downstream meets a non-string."""
    result: dict[str, str] = {}
    for key, value in (custom or {}).items():
        if not isinstance(key, str):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        result[key[:255]] = text[:MAX_CLAIM_TEXT]
    return result


def _locale(presentation: Mapping[str, Any] | None) -> str | None:
    """§5.4.4 launch_presentation.locale; Moodle sends its own names ("pt_br"): keep them."""
    locale = _text(presentation.get("locale")) if presentation else None
    return locale[:64] if locale else None


def parse_launch_context(claims: Mapping[str, Any], client_id: str) -> LaunchContext:
    """A typed launch from claims that passed ``check_message_claims``."""
    ext = _object(claims, EXT)
    lis = _object(claims, LIS)
    person = Person(
        subject=_text(claims.get("sub")),
        given_name=_text(claims.get("given_name")),
        family_name=_text(claims.get("family_name")),
        name=_text(claims.get("name")),
        email=_text(claims.get("email")),
        person_sourcedid=_text(lis.get("person_sourcedid")) if lis else None,
        username=_text(ext.get("user_username")) if ext else None,
    )
    roles = tuple(normalise_role(role) for role in claims.get(ROLES, []) if role.strip())
    context: CourseContext | None = None
    context_claim = _object(claims, CONTEXT)
    if context_claim is not None:
        raw_types = context_claim.get("type")
        types = raw_types if isinstance(raw_types, list) else []
        context = CourseContext(
            id=str(context_claim["id"])[:255],
            label=_text(context_claim.get("label")),
            title=_text(context_claim.get("title")),
            types=tuple(normalise_context_type(t) for t in types if isinstance(t, str)),
        )
    resource_link: ResourceLinkInfo | None = None
    link_claim = _object(claims, RESOURCE_LINK)
    if link_claim is not None and _text(link_claim.get("id")):
        resource_link = ResourceLinkInfo(
            id=str(link_claim["id"])[:255],
            title=_text(link_claim.get("title")),
            description=_text(link_claim.get("description")),
        )
    presentation = _object(claims, LAUNCH_PRESENTATION)
    return LaunchContext(
        issuer=str(claims["iss"]),
        client_id=client_id,
        deployment_id=str(claims[DEPLOYMENT_ID]),
        message_type=str(claims[MESSAGE_TYPE]),
        target_link_uri=str(claims[TARGET_LINK_URI]),
        person=person,
        roles=roles,
        context=context,
        resource_link=resource_link,
        custom=_custom_strings(_object(claims, CUSTOM)),
        # Moodle sends its own locale names ("pt_br"); keep them as sent.
        locale=_locale(presentation),
        lis=lis,
        ags_endpoint=_object(claims, AGS_ENDPOINT),
        nrps=_object(claims, NRPS),
        deep_linking_settings=_object(claims, DEEP_LINKING_SETTINGS),
        basic_outcome=_object(claims, BASIC_OUTCOME),
        ext=ext,
        tool_platform=_object(claims, TOOL_PLATFORM),
        launch_presentation=presentation,
    )
