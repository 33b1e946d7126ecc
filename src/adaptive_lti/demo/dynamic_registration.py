"""The demo platform's side of LTI Dynamic Registration 1.0
(https://www.imsglobal.org/spec/lti-dr/v1p0/), as Moodle 4.5's "Tool URL" in Site administration →
Manage tools, ``mod/lti/openid-configuration.php`` and ``mod/lti/openid-registration.php`` do it.

1. The administrator pastes the tool's registration URL; the platform issues a registration
   token (single use, an hour long) and opens the URL in a frame with ``openid_configuration``
   and ``registration_token`` added to its query (§3.3).
2. The tool fetches the platform's OpenID configuration (``DemoPlatform.openid_configuration``)
   and POSTs its own to ``registration_endpoint`` with the token as a Bearer token (§3.5).
3. ``register_tool`` checks the token and the fields Moodle cannot do without
   (``response_types`` with ``id_token``, ``initiate_login_uri``, ``redirect_uris``,
   ``client_name``, ``jwks_uri``, ``token_endpoint_auth_method`` = ``private_key_jwt``, the
   ``lti-tool-configuration`` with ``domain`` and ``target_link_uri`` on that domain), makes a
   new tool type with a random client id and the next tool type id as its deployment id, and
   answers as Moodle does (§3.6): the request echoed with ``client_id``, the deployment id in
   the tool configuration, the granted ``scope``, as JSON sent with ``text/html``. The token is
   used up by a registration that succeeds; a refused one may be corrected and sent again.
4. The tool's page posts ``org.imsglobal.lti.close`` (§3.7); the platform then lists the new
   tool as "Pending", as Moodle does, until the administrator activates it.

When a tool on the pasted URL's domain exists already, Moodle's ``startltiadvregistration.php``
first asks whether to *Update* that tool or *Register as a new external tool*. *Update* issues a
token whose scope is ``reg-update`` for the existing tool type: the registration POST then
rewrites that tool type in place (same client id, same deployment id, same state) and answers
200 with the **same client id** as before (``tools_on_domain``, ``issue_registration_token``
with ``update_client_id``).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adaptive_lti.core.errors import InvalidInputError, NotFoundError
from adaptive_lti.demo.platform import DemoPlatform
from adaptive_lti.demo.store import DemoPlatformStore

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
REGISTRATION_TOKEN_LIFETIME_SECONDS = 3600
# Moodle's client ids are random_string(15): letters and digits.
CLIENT_ID_LENGTH = 15
MAX_REGISTRATION_BYTES = 64 * 1024
STATUS_PENDING = "pending"
STATUS_ACTIVE = "active"


class RegistrationRefused(Exception):
    """A registration request the platform refuses: an OAuth-style error (RFC 7591 §3.2.2)."""

    def __init__(self, status_code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _token_digest(token: str) -> str:
    # Only a digest is stored: the file never holds a usable token.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_registration_token(
    store: DemoPlatformStore, now: int, *, update_client_id: str | None = None
) -> str:
    """A single-use registration token; with ``update_client_id``, one of Moodle's
    ``reg-update`` tokens, which makes the registration update that tool instead of adding one."""
    token = secrets.token_urlsafe(32)
    with store.locked(write=True) as data:
        if update_client_id is not None and not any(
            entry["client_id"] == update_client_id for entry in data["tool_registrations"]
        ):
            raise NotFoundError(
                f"The platform has no tool with client id {update_client_id[:40]!r} to update.",
                hint="Go back to Manage tools and paste the tool URL again.",
            )
        tokens: dict[str, int] = {
            digest: expiry
            for digest, expiry in data["registration_tokens"].items()
            if expiry >= now
        }
        digest = _token_digest(token)
        tokens[digest] = now + REGISTRATION_TOKEN_LIFETIME_SECONDS
        data["registration_tokens"] = tokens
        updates: dict[str, str] = {
            key: value
            for key, value in data.get("registration_update_tokens", {}).items()
            if key in tokens
        }
        if update_client_id is not None:
            updates[digest] = update_client_id
        data["registration_update_tokens"] = updates
    return token


def check_tool_url(tool_url: str) -> str:
    """The registration URL an administrator pasted: an absolute http(s) URL."""
    url = tool_url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise InvalidInputError(
            f"{url[:200]!r} is not an absolute http(s) URL.",
            hint="Paste the tool's registration URL, for this tool its address followed by "
            "/lti/register.",
        )
    return url


def registration_start_url(tool_url: str, platform: DemoPlatform, token: str) -> str:
    """The tool's registration URL with the two parameters of §3.3 added to its own query."""
    parts = urlsplit(check_tool_url(tool_url))
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in ("openid_configuration", "registration_token")
    ]
    query += [
        ("openid_configuration", platform.issuer + "/.well-known/openid-configuration"),
        ("registration_token", token),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def missing_fields(body: Mapping[str, Any]) -> list[str]:
    """What Moodle's registration helper refuses a registration for (``invalid_client_metadata``)."""
    problems = []
    response_types = body.get("response_types")
    if not isinstance(response_types, list) or "id_token" not in response_types:
        problems.append("response_types must include id_token")
    for name in ("initiate_login_uri", "client_name", "jwks_uri"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            problems.append(f"{name} is missing")
    redirect_uris = body.get("redirect_uris")
    if (
        not isinstance(redirect_uris, list)
        or not redirect_uris
        or not all(isinstance(uri, str) and uri for uri in redirect_uris)
    ):
        problems.append("redirect_uris is missing")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        problems.append("token_endpoint_auth_method must be private_key_jwt")
    tool = body.get(TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        problems.append(f"{TOOL_CONFIGURATION} is missing")
        return problems
    for name in ("domain", "target_link_uri"):
        if not isinstance(tool.get(name), str) or not tool[name]:
            problems.append(f"{TOOL_CONFIGURATION}.{name} is missing")
    target, domain = tool.get("target_link_uri"), tool.get("domain")
    on_domain = isinstance(target, str) and urlsplit(target).netloc == domain
    if isinstance(domain, str) and domain and not on_domain:
        problems.append("target_link_uri is not on the tool's domain")
    return problems


def register_tool(
    store: DemoPlatformStore,
    platform: DemoPlatform,
    authorization: str | None,
    body: Any,
    now: int,
) -> dict[str, Any]:
    """Register a tool (§3.5.2-§3.6) or raise ``RegistrationRefused``; returns the answer."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RegistrationRefused(
            401, "invalid_token", "an Authorization: Bearer registration token is required"
        )
    if not isinstance(body, dict):
        raise RegistrationRefused(
            400, "invalid_client_metadata", "the registration request is not a JSON object"
        )
    problems = missing_fields(body)
    digest = _token_digest(token.strip())
    with store.locked(write=True) as data:
        expiry = data["registration_tokens"].get(digest)
        if expiry is None or int(expiry) < now:
            raise RegistrationRefused(
                401,
                "invalid_token",
                "the registration token is unknown, used already or expired",
            )
        if problems:
            raise RegistrationRefused(400, "invalid_client_metadata", "; ".join(problems))
        del data["registration_tokens"][digest]  # single use (§3.5.2)
        update_client_id = data.get("registration_update_tokens", {}).pop(digest, None)
        registrations: list[dict[str, Any]] = data["tool_registrations"]
        updated = next(
            (entry for entry in registrations if entry["client_id"] == update_client_id), None
        )
        if updated is not None:
            # Moodle's reg-update: the tool type keeps its client id, id (deployment) and state.
            client_id, deployment_id = updated["client_id"], updated["deployment_id"]
            status, registered_at = updated["status"], updated["registered_at"]
            registrations.remove(updated)
        else:
            taken = [
                int(platform.deployment_id),
                *(int(r["deployment_id"]) for r in registrations),
            ]
            deployment_id = str(max(taken) + 1)
            alphabet = string.ascii_letters + string.digits
            client_id = "".join(secrets.choice(alphabet) for _ in range(CLIENT_ID_LENGTH))
            status, registered_at = STATUS_PENDING, now
        tool = dict(body[TOOL_CONFIGURATION])
        offered = set(platform.openid_configuration()["scopes_supported"])
        requested = str(body.get("scope") or "").split()
        granted = [scope for scope in requested if scope in offered]
        registrations.append(
            {
                "client_id": client_id,
                "deployment_id": deployment_id,
                "client_name": str(body["client_name"])[:255],
                "initiate_login_uri": str(body["initiate_login_uri"]),
                "redirect_uris": [str(uri) for uri in body["redirect_uris"]],
                "jwks_uri": str(body["jwks_uri"]),
                "domain": str(tool["domain"]),
                "target_link_uri": str(tool["target_link_uri"]),
                "scopes": granted,
                "claims": [str(claim) for claim in tool.get("claims") or []],
                "messages": [
                    str(message.get("type"))
                    for message in tool.get("messages") or []
                    if isinstance(message, dict)
                ],
                "status": status,
                "registered_at": registered_at,
                "updated_at": now if updated is not None else None,
            }
        )
    return {
        **body,
        "client_id": client_id,
        "response_types": ["id_token"],
        "scope": " ".join(granted),
        TOOL_CONFIGURATION: {**tool, "deployment_id": deployment_id},
    }


@dataclass(frozen=True)
class ToolRegistration:
    """A tool type made by dynamic registration, as Manage tools lists it."""

    client_id: str
    deployment_id: str
    client_name: str
    initiate_login_uri: str
    redirect_uris: tuple[str, ...]
    jwks_uri: str
    domain: str
    target_link_uri: str
    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    messages: tuple[str, ...]
    status: str
    registered_at: int


def tool_registrations(store: DemoPlatformStore) -> list[ToolRegistration]:
    with store.locked(write=False) as data:
        stored = list(data["tool_registrations"])
    return [
        ToolRegistration(
            client_id=entry["client_id"],
            deployment_id=entry["deployment_id"],
            client_name=entry["client_name"],
            initiate_login_uri=entry["initiate_login_uri"],
            redirect_uris=tuple(entry["redirect_uris"]),
            jwks_uri=entry["jwks_uri"],
            domain=entry["domain"],
            target_link_uri=entry["target_link_uri"],
            scopes=tuple(entry["scopes"]),
            claims=tuple(entry["claims"]),
            messages=tuple(entry["messages"]),
            status=entry["status"],
            registered_at=int(entry["registered_at"]),
        )
        for entry in stored
    ]


def tools_on_domain(store: DemoPlatformStore, tool_url: str) -> list[ToolRegistration]:
    """The tools already registered for the pasted URL's domain: Moodle then asks whether to
    update one of them or to register a new tool."""
    domain = urlsplit(check_tool_url(tool_url)).netloc.lower()
    return [tool for tool in tool_registrations(store) if tool.domain.lower() == domain]


def activate_tool(store: DemoPlatformStore, client_id: str) -> ToolRegistration:
    """The administrator activates a pending tool (Moodle: "Activate" under Pending tools)."""
    with store.locked(write=True) as data:
        for entry in data["tool_registrations"]:
            if entry["client_id"] == client_id:
                entry["status"] = STATUS_ACTIVE
                break
        else:
            raise NotFoundError(
                f"The platform has no tool with client id {client_id[:40]!r}.",
                hint="Go back to Manage tools and press the button beside the tool.",
            )
    [found] = [tool for tool in tool_registrations(store) if tool.client_id == client_id]
    return found


def platform_for_tool(
    store: DemoPlatformStore, platform: DemoPlatform, client_id: str
) -> DemoPlatform:
    """The platform launching through a tool registered here by dynamic registration. Only an
    activated tool launches: Moodle offers pending tools to no course."""
    found = next((tool for tool in tool_registrations(store) if tool.client_id == client_id), None)
    if found is None:
        raise NotFoundError(
            f"The platform has no tool with client id {client_id[:40]!r}.",
            hint="Go back to Manage tools and register the tool first.",
        )
    if found.status != STATUS_ACTIVE:
        raise InvalidInputError(
            f"The tool {found.client_name!r} (client id {found.client_id}) is still pending on "
            "this platform.",
            hint="Press 'Activate' beside it in Manage tools, then launch it.",
        )
    return platform.through_registered_tool(found.client_id, found.deployment_id)
