"""A fake Moodle 4.5 for LTI Dynamic Registration, served through ``httpx.MockTransport``.

It serves ``mod/lti/openid-configuration.php`` and ``mod/lti/openid-registration.php`` and checks
a registration the way Moodle's registration helper does: a single-use Bearer token, and every
field Moodle requires (refused with ``400 {"error": "invalid_client_metadata"}`` otherwise). Other
requests go to ``fallback`` (e.g. the scripted platform's JWKS server), or 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

SITE = "https://moodle.example.edu"
CONFIGURATION_URL = SITE + "/mod/lti/openid-configuration.php"
REGISTRATION_URL = SITE + "/mod/lti/openid-registration.php"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"

MOODLE_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-bo/scope/basicoutcome",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting",
    "openid",
]


def moodle_configuration(site: str = SITE) -> dict[str, Any]:
    return {
        "issuer": site,
        "token_endpoint": site + "/mod/lti/token.php",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "jwks_uri": site + "/mod/lti/certs.php",
        "authorization_endpoint": site + "/mod/lti/auth.php",
        "registration_endpoint": site + "/mod/lti/openid-registration.php",
        "scopes_supported": list(MOODLE_SCOPES),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "moodle",
            "version": "4.5 (Build: 20241007)",
            "messages_supported": [
                {"type": "LtiResourceLinkRequest"},
                {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
            ],
            "variables": ["basic-lti-launch-request", "ContentItemSelectionRequest"],
        },
    }


def missing_fields(body: dict[str, Any]) -> list[str]:
    """What Moodle's registration helper would refuse the request for."""
    problems = []
    if "id_token" not in (body.get("response_types") or []):
        problems.append("response_types must include id_token")
    for name in ("initiate_login_uri", "redirect_uris", "client_name", "jwks_uri"):
        if not body.get(name):
            problems.append(f"{name} is missing")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        problems.append("token_endpoint_auth_method must be private_key_jwt")
    tool = body.get(TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        problems.append("lti-tool-configuration is missing")
    else:
        for name in ("domain", "target_link_uri"):
            if not tool.get(name):
                problems.append(f"lti-tool-configuration.{name} is missing")
        target = urlsplit(str(tool.get("target_link_uri", "")))
        if tool.get("domain") and target.netloc != tool["domain"]:
            problems.append("target_link_uri is not on the tool's domain")
    return problems


@dataclass
class FakeMoodle:
    site: str = SITE
    configuration: dict[str, Any] = field(default_factory=lambda: moodle_configuration())
    tokens: set[str] = field(default_factory=lambda: {"single-use-token"})
    client_id: str = "DynClient42"
    deployment_id: str = "7"
    # Replace to answer the configuration request differently (status, body, content type).
    configuration_response: Callable[[httpx.Request], httpx.Response] | None = None
    fallback: Callable[[httpx.Request], httpx.Response] | None = None
    registrations: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if request.method == "GET" and url == self.site + "/mod/lti/openid-configuration.php":
            if self.configuration_response is not None:
                return self.configuration_response(request)
            return httpx.Response(200, json=self.configuration)
        if request.method == "POST" and url == self.site + "/mod/lti/openid-registration.php":
            return self.register(request)
        if self.fallback is not None:
            return self.fallback(request)
        return httpx.Response(404, text="not found")

    def register(self, request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("authorization")
        self.authorizations.append(authorization)
        token = (authorization or "").removeprefix("Bearer ")
        if token not in self.tokens:
            return httpx.Response(
                401,
                json={"error": "invalid_token", "error_description": "Unknown or used token"},
            )
        body = json.loads(request.content)
        problems = missing_fields(body)
        if problems:
            return httpx.Response(
                400,
                json={"error": "invalid_client_metadata", "error_description": "; ".join(problems)},
            )
        self.tokens.discard(token)  # single use
        self.registrations.append(body)
        answer = {
            **body,
            "client_id": self.client_id,
            "response_types": ["id_token"],
            TOOL_CONFIGURATION: {
                **body[TOOL_CONFIGURATION],
                "deployment_id": self.deployment_id,
            },
        }
        # Moodle answers JSON with a text/html content type.
        return httpx.Response(
            200,
            content=json.dumps(answer).encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
