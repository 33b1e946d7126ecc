"""LTI Dynamic Registration 1.0: register the tool with a platform from one pasted URL.

Spec: https://www.imsglobal.org/spec/lti-dr/v1p0/. The platform opens the tool's registration URL
(in Moodle: Site administration → Plugins → Activity modules → External tool → Manage tools →
"Tool URL") with two query parameters, ``openid_configuration`` and ``registration_token`` (§3.3).
The tool then

1. fetches the platform's OpenID configuration (§3.4) and checks it: the issuer must share the
   configuration URL's origin (§3.5.1), and the endpoints a tool needs must be there;
2. POSTs its own configuration to ``registration_endpoint`` with the single-use token as a Bearer
   token (§3.5.2): the OpenID client metadata plus the
   ``https://purl.imsglobal.org/spec/lti-tool-configuration`` object (§3.5.2.1) — the fields Moodle
   refuses to do without are ``response_types`` with ``id_token``, ``initiate_login_uri``,
   ``redirect_uris``, ``client_name``, ``jwks_uri``, ``token_endpoint_auth_method`` =
   ``private_key_jwt`` and the tool configuration's ``domain`` and ``target_link_uri``;
3. stores what the answer says (``client_id`` and the deployment id, §3.6) — when the issuer
   and that client id are known already, it updates that registration in place: Moodle's
   *Update* of an existing tool answers with the same client id as before — and
4. closes the registration window by posting ``{subject: "org.imsglobal.lti.close"}`` to its
   opener or parent (§3.7, done by the page in ``web/``).

The HTTP client is passed in (an ``httpx.Client`` whose transport tests replace); the calls are
blocking and must run off the event loop (the web route is a plain ``def``, run in a thread).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.core.lti import (
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    PlatformRegistrationInfo,
    RegistrationStatus,
)
from adaptive_lti.db import audit_repo, registrations_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.settings import Environment, Settings

log = logging.getLogger("adaptive_lti.lti.registration")

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
# The tool's own endpoints, under Settings.base_url (served by web/routes/lti.py).
LOGIN_PATH = "/lti/login"
LAUNCH_PATH = "/lti/launch"
JWKS_PATH = "/.well-known/jwks.json"
# What a platform may send back; larger answers are not a configuration.
MAX_RESPONSE_BYTES = 512 * 1024
HTTP_TIMEOUT = httpx.Timeout(10.0)


class RegistrationError(AdaptiveLtiError):
    """Dynamic registration failed; nothing was stored.

    ``status_code`` is 400 when what the platform sent is unusable and 502 when the platform could
    not be reached or refused the registration.
    """

    def __init__(self, message: str, *, hint: str, status_code: int = 400) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code


_RETRY_HINT = (
    "Start the registration again from the platform (in Moodle: Site administration → Plugins → "
    "Activity modules → External tool → Manage tools, paste the tool URL, press 'Add LTI "
    "Advantage'); a registration token can be used only once."
)


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of the platform's OpenID configuration (§3.4.1) the tool uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    # §3.4.1: the token audience when it is not the token endpoint.
    authorization_server: str | None
    scopes_supported: tuple[str, ...] | None
    claims_supported: tuple[str, ...] | None
    product_family_code: str | None
    product_version: str | None


@dataclass(frozen=True)
class RegistrationResult:
    """What the platform answered (§3.6): our client id and, usually, the deployment id."""

    client_id: str
    deployment_id: str | None
    scope: str | None


@dataclass(frozen=True)
class CompletedRegistration:
    registration: PlatformRegistrationInfo
    deployment_id: str | None
    configuration: PlatformConfiguration
    requested_scopes: tuple[str, ...]
    granted_scope: str | None
    # True when the platform updated a tool it had registered before (Moodle's "Update"): the
    # tool's registration of it was updated in place, not added.
    updated: bool = False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    return parts.scheme, (parts.hostname or "").lower(), port


def _check_url(url: object, what: str, *, allow_http: bool) -> str:
    if not isinstance(url, str) or not url.strip():
        raise RegistrationError(
            f"The platform's OpenID configuration has no {what}.",
            hint="The platform does not support LTI Dynamic Registration fully; register the tool "
            "by hand with 'adaptive-lti platform add'.",
        )
    parts = urlsplit(url)
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes or not parts.hostname:
        raise RegistrationError(
            f"The platform's {what} {url[:200]!r} is not an absolute "
            f"{'http(s)' if allow_http else 'https'} URL.",
            hint="Check the platform's site URL setting (wwwroot in Moodle's config.php).",
        )
    return url


def _allow_http(settings: Settings) -> bool:
    # Local set-ups (a Moodle on http://localhost:8080) are plain HTTP; production is not.
    return settings.environment is not Environment.production


def check_configuration_url(url: str, settings: Settings) -> str:
    """The ``openid_configuration`` parameter must be an absolute URL (https in production)."""
    allow_http = _allow_http(settings)
    parts = urlsplit(url.strip())
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes or not parts.hostname or parts.fragment:
        raise RegistrationError(
            f"openid_configuration {url[:200]!r} is not an absolute "
            f"{'http(s)' if allow_http else 'https'} URL.",
            hint=_RETRY_HINT,
        )
    return url.strip()


def _read_json(response: httpx.Response, what: str) -> Mapping[str, Any]:
    body = response.content[: MAX_RESPONSE_BYTES + 1]
    if len(body) > MAX_RESPONSE_BYTES:
        raise RegistrationError(
            f"The platform's {what} is larger than {MAX_RESPONSE_BYTES // 1024} KiB.",
            hint=_RETRY_HINT,
            status_code=502,
        )
    # Moodle answers some JSON with Content-Type text/html: parse whatever the header says.
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RegistrationError(
            f"The platform's {what} is not JSON (HTTP {response.status_code}, "
            f"Content-Type {response.headers.get('content-type', 'none')!r}).",
            hint="Check that the URL is the platform's registration URL and that the platform "
            "is not showing a login or maintenance page.",
            status_code=502,
        ) from None
    if not isinstance(value, dict):
        raise RegistrationError(
            f"The platform's {what} is JSON but not an object.", hint=_RETRY_HINT, status_code=502
        )
    return value


def _unreachable(what: str, url: str, error: httpx.HTTPError) -> RegistrationError:
    reason = "it did not answer in time" if isinstance(error, httpx.TimeoutException) else ""
    reason = reason or type(error).__name__
    return RegistrationError(
        f"The tool could not reach the platform's {what} at {url[:200]} ({reason}).",
        hint="Check that the tool's server can reach the platform (DNS, firewall, proxy), then "
        "start the registration again.",
        status_code=502,
    )


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return None


def fetch_platform_configuration(
    client: httpx.Client, configuration_url: str, settings: Settings
) -> PlatformConfiguration:
    """GET the platform's OpenID configuration and check it (§3.4, §3.5.1)."""
    url = check_configuration_url(configuration_url, settings)
    allow_http = _allow_http(settings)
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise _unreachable("OpenID configuration", url, error) from None
    if response.status_code != 200:
        raise RegistrationError(
            f"The platform's OpenID configuration at {url[:200]} answered HTTP "
            f"{response.status_code} instead of 200.",
            hint=_RETRY_HINT,
            status_code=502,
        )
    document = _read_json(response, "OpenID configuration")
    issuer = _check_url(document.get("issuer"), "issuer", allow_http=allow_http)
    issuer_parts = urlsplit(issuer)
    if issuer_parts.query or issuer_parts.fragment:
        raise RegistrationError(
            f"The platform's issuer {issuer!r} has a query or fragment, which an issuer may not.",
            hint="Check the platform's site URL setting.",
        )
    # §3.5.1: "the issuer ... MUST match the domain of the openid_configuration URL": a
    # configuration served from one site cannot speak for another.
    if _origin(issuer) != _origin(url):
        raise RegistrationError(
            f"The platform's issuer {issuer!r} is not on the same site as its configuration URL "
            f"{url[:200]!r}; the tool refuses a configuration that speaks for another site.",
            hint="Check the platform's site URL (Moodle: wwwroot in config.php) matches the "
            "address it is reached at, then start the registration again.",
        )
    algorithms = _strings(document.get("id_token_signing_alg_values_supported"))
    if algorithms is not None and "RS256" not in algorithms:
        raise RegistrationError(
            "The platform does not sign id_tokens with RS256 "
            f"(it lists {', '.join(algorithms) or 'nothing'}), which LTI 1.3 requires.",
            hint="Register the tool by hand if the platform's documentation says otherwise.",
        )
    platform = document.get(PLATFORM_CONFIGURATION)
    platform_info = platform if isinstance(platform, dict) else {}
    authorization_server = document.get("authorization_server")
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=_check_url(
            document.get("authorization_endpoint"), "authorization_endpoint", allow_http=allow_http
        ),
        token_endpoint=_check_url(
            document.get("token_endpoint"), "token_endpoint", allow_http=allow_http
        ),
        jwks_uri=_check_url(document.get("jwks_uri"), "jwks_uri", allow_http=allow_http),
        registration_endpoint=_check_url(
            document.get("registration_endpoint"), "registration_endpoint", allow_http=allow_http
        ),
        authorization_server=authorization_server
        if isinstance(authorization_server, str) and authorization_server
        else None,
        scopes_supported=_strings(document.get("scopes_supported")),
        claims_supported=_strings(document.get("claims_supported")),
        product_family_code=str(platform_info.get("product_family_code") or "") or None,
        product_version=str(platform_info.get("version") or "") or None,
    )


def requested_scopes(settings: Settings, configuration: PlatformConfiguration) -> tuple[str, ...]:
    """The configured scopes, less those the platform says it does not support."""
    if configuration.scopes_supported is None:
        return settings.registration_scopes
    supported = set(configuration.scopes_supported)
    return tuple(scope for scope in settings.registration_scopes if scope in supported)


def tool_registration_request(settings: Settings, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The body POSTed to the registration endpoint (§3.5.2, OpenID Connect Registration §2)."""
    base = settings.base_url.rstrip("/")
    launch_url = base + LAUNCH_PATH
    domain = urlsplit(base).netloc
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base + LOGIN_PATH,
        "redirect_uris": [launch_url],
        "client_name": settings.tool_name,
        "jwks_uri": base + JWKS_PATH,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: {
            "domain": domain,
            "target_link_uri": launch_url,
            "description": (
                "Routes each learner along the paths of a learning design that fit their "
                "background and results, and sends the grade back."
            ),
            "claims": list(settings.registration_claims),
            "messages": [
                {
                    "type": RESOURCE_LINK_REQUEST,
                    "target_link_uri": launch_url,
                    "label": settings.tool_name,
                },
                {
                    # Deep linking (LTI-DL 2.0): teachers pick a design when adding the activity.
                    "type": DEEP_LINKING_REQUEST,
                    "target_link_uri": launch_url,
                    "label": f"{settings.tool_name}: choose a design",
                    "placements": ["ContentArea"],
                    "supported_types": ["ltiResourceLink"],
                },
            ],
        },
    }


def _refusal_detail(response: httpx.Response) -> str:
    """The platform's own words, when it sent an OAuth-style error object (RFC 7591 §3.2.2)."""
    try:
        value = json.loads(response.content[:4096])
    except (UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(value, dict):
        return ""
    parts = [str(value[key])[:300] for key in ("error", "error_description") if value.get(key)]
    return ": " + " — ".join(parts) if parts else ""


def post_registration(
    client: httpx.Client,
    configuration: PlatformConfiguration,
    registration_token: str | None,
    body: Mapping[str, Any],
) -> RegistrationResult:
    """POST the tool's configuration; the platform answers with our client id (§3.5.2, §3.6)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if registration_token:
        # §3.5.2: the token from the registration URL, as a Bearer token, used once.
        headers["Authorization"] = f"Bearer {registration_token}"
    url = configuration.registration_endpoint
    try:
        response = client.post(url, content=json.dumps(dict(body)), headers=headers)
    except httpx.HTTPError as error:
        raise _unreachable("registration endpoint", url, error) from None
    if response.status_code not in (200, 201):
        raise RegistrationError(
            f"The platform refused the registration (HTTP {response.status_code})"
            f"{_refusal_detail(response)}.",
            hint=_RETRY_HINT
            + " If the platform says the token is invalid, it has been used already or expired.",
            status_code=502,
        )
    answer = _read_json(response, "registration response")
    client_id = answer.get("client_id")
    if not isinstance(client_id, str | int) or isinstance(client_id, bool) or not str(client_id):
        raise RegistrationError(
            "The platform accepted the registration but its answer has no client_id.",
            hint="Remove the half-made tool on the platform and register the tool by hand with "
            "'adaptive-lti platform add'.",
            status_code=502,
        )
    tool_configuration = answer.get(TOOL_CONFIGURATION)
    deployment_id: str | None = None
    if isinstance(tool_configuration, dict):
        raw = tool_configuration.get("deployment_id")
        if isinstance(raw, str | int) and not isinstance(raw, bool) and str(raw):
            deployment_id = str(raw)
    scope = answer.get("scope")
    return RegistrationResult(
        client_id=str(client_id),
        deployment_id=deployment_id,
        scope=scope if isinstance(scope, str) else None,
    )


def register_with_platform(
    session: Session,
    client: httpx.Client,
    settings: Settings,
    *,
    openid_configuration: str,
    registration_token: str | None,
    now: datetime,
) -> CompletedRegistration:
    """The whole registration: fetch, check, register, store. Nothing is stored on any error."""
    configuration = fetch_platform_configuration(client, openid_configuration, settings)
    scopes = requested_scopes(settings, configuration)
    body = tool_registration_request(settings, scopes)
    result = post_registration(client, configuration, registration_token, body)
    existing = registrations_repo.find_registration(session, configuration.issuer, result.client_id)
    if existing is None:
        # Moodle's update token names the tool it updates (``sub``, scope ``reg-update``): if
        # the platform answered another client id, that registration takes the new one.
        updated_client_id = update_token_client_id(registration_token)
        if updated_client_id is not None:
            existing = registrations_repo.find_registration(
                session, configuration.issuer, updated_client_id
            )
    if existing is not None:
        return _update_in_place(session, existing, configuration, result, scopes, now)
    status = (
        RegistrationStatus.awaiting_approval
        if settings.approval_required_for_registrations
        else RegistrationStatus.active
    )
    name = configuration.product_family_code or urlsplit(configuration.issuer).netloc
    registration = registrations_repo.add_registration(
        session,
        issuer=configuration.issuer,
        client_id=result.client_id,
        auth_login_url=configuration.authorization_endpoint,
        auth_token_url=configuration.token_endpoint,
        auth_token_audience=configuration.authorization_server,
        jwks_url=configuration.jwks_uri,
        name=f"{name} (dynamic registration)",
        status=status,
        deployment_ids=[result.deployment_id] if result.deployment_id else [],
        now=now,
    )
    audit_repo.append(
        session,
        audit_repo.Actor(f"dynamic registration by {configuration.issuer}"),
        AuditAction.registration_add,
        registration.id,
        f"registration {registration.id}",
        {
            "issuer": registration.issuer,
            "client_id": registration.client_id,
            "status": status.value,
            "deployments": [result.deployment_id] if result.deployment_id else [],
        },
        now=now,
    )
    log.info(
        "dynamic registration: issuer=%s client_id=%s deployment=%s status=%s",
        configuration.issuer,
        result.client_id,
        result.deployment_id,
        status.value,
    )
    return CompletedRegistration(
        registration=registration,
        deployment_id=result.deployment_id,
        configuration=configuration,
        requested_scopes=scopes,
        granted_scope=result.scope,
    )


# Moodle's registration token for "Update" (startltiadvregistration.php, type=2).
UPDATE_TOKEN_SCOPE = "reg-update"  # noqa: S105 - a scope name, not a secret


def update_token_client_id(registration_token: str | None) -> str | None:
    """The client id a Moodle "Update" registration token names (its ``sub`` when its scope is
    ``reg-update``), read without verifying it: it only picks which of this issuer's
    registrations the platform's own answer updates. None for any other token."""
    parts = (registration_token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(claims, dict) or claims.get("scope") != UPDATE_TOKEN_SCOPE:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


def _update_in_place(
    session: Session,
    existing: PlatformRegistrationInfo,
    configuration: PlatformConfiguration,
    result: RegistrationResult,
    scopes: tuple[str, ...],
    now: datetime,
) -> CompletedRegistration:
    """The platform updated a tool it knew (Moodle: "Update" in Manage tools, a ``reg-update``
    token; the answer carries the client id it had): take its endpoints as they are now, add the
    deployment it names, and keep what the tool recorded (status, other deployments, users,
    launches, designs)."""
    registration = registrations_repo.update_registration(
        session,
        existing.id,
        client_id=result.client_id if result.client_id != existing.client_id else None,
        auth_login_url=configuration.authorization_endpoint,
        auth_token_url=configuration.token_endpoint,
        auth_token_audience=configuration.authorization_server,
        jwks_url=configuration.jwks_uri,
    )
    deployment_id = result.deployment_id
    if (
        deployment_id
        and registrations_repo.find_deployment(session, existing.id, deployment_id) is None
    ):
        registrations_repo.add_deployment(session, existing.id, deployment_id, active=True, now=now)
    log.info(
        "dynamic registration updated in place: registration=%s issuer=%s client_id=%s "
        "deployment=%s status=%s",
        existing.id,
        configuration.issuer,
        result.client_id,
        deployment_id,
        registration.status.value,
    )
    return CompletedRegistration(
        registration=registration,
        deployment_id=deployment_id,
        configuration=configuration,
        requested_scopes=scopes,
        granted_scope=result.scope,
        updated=True,
    )


def http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The client registration uses: short timeouts, no redirects (a moved URL is an error)."""
    return httpx.Client(transport=transport, timeout=HTTP_TIMEOUT, follow_redirects=False)
