"""A scripted LTI 1.3 platform for tests: RSA keys, a JWKS served through httpx.MockTransport,
and id_tokens shaped like Moodle 4.5's (see the redacted payloads the project was built from).

Nothing here is imported by the project; tests use it to play the platform's side.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import PlatformRegistrationInfo
from adaptive_lti.db import registrations_repo

ISSUER = "https://moodle.example.edu"
CLIENT_ID = "Xc7CLIENTIDx9"
DEPLOYMENT_ID = "1"
TOOL_BASE = "http://testserver"
LAUNCH_URL = TOOL_BASE + "/lti/launch"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


@lru_cache(maxsize=8)
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """Keys are slow to make: a few, made once per test run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


@dataclass
class JwksServer:
    """What the platform's certs.php answers; tests switch it down or to garbage."""

    keys: list[dict[str, Any]]
    mode: str = "ok"  # ok | down | not-json | http-500
    cache_control: str | None = "max-age=3600"
    fetches: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches.append(str(request.url))
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "not-json":
            return httpx.Response(200, text="<html>Moodle maintenance</html>")
        if self.mode == "http-500":
            return httpx.Response(500, text="oops")
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        return httpx.Response(200, json={"keys": self.keys}, headers=headers)


class ScriptedPlatform:
    def __init__(
        self,
        *,
        issuer: str = ISSUER,
        client_id: str = CLIENT_ID,
        deployment_id: str = DEPLOYMENT_ID,
        key_index: int = 0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.kid = f"platform-key-{key_index}"
        self.key = rsa_key(key_index)
        self.jwks_url = issuer + "/mod/lti/certs.php"
        self.auth_login_url = issuer + "/mod/lti/auth.php"
        self.token_url = issuer + "/mod/lti/token.php"
        self.server = JwksServer(keys=[public_jwk(self.key, self.kid)])

    # -- the platform's side of the wire ---------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.server.handle)

    def rotate(self, key_index: int) -> None:
        """The platform makes a new key, signs with it, and publishes only it."""
        self.kid = f"platform-key-{key_index}"
        self.key = rsa_key(key_index)
        self.server.keys = [public_jwk(self.key, self.kid)]

    def register(
        self,
        session: Session,
        now: datetime,
        *,
        deployments: tuple[str, ...] = (DEPLOYMENT_ID,),
        static: bool = False,
    ) -> PlatformRegistrationInfo:
        return registrations_repo.add_registration(
            session,
            issuer=self.issuer,
            client_id=self.client_id,
            auth_login_url=self.auth_login_url,
            auth_token_url=self.token_url,
            jwks_url=None if static else self.jwks_url,
            static_jwks={"keys": self.server.keys} if static else None,
            name="Example Moodle",
            deployment_ids=deployments,
            now=now,
        )

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = "default",
        key: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
    ) -> str:
        headers: dict[str, Any] = {}
        if kid == "default":
            headers["kid"] = self.kid
        elif kid is not None:
            headers["kid"] = kid
        # PyJWS, not jwt.encode: the tests sign claims jwt.encode would refuse (a list as iss).
        token = jwt.PyJWS().encode(
            json.dumps(claims).encode(), key or self.key, algorithm=algorithm, headers=headers
        )
        if kid is None:
            token = _without_header_field(token, "kid")
        return token

    # -- Moodle 4.5-shaped claims ----------------------------------------------------------

    def claims(
        self,
        *,
        nonce: str,
        now: datetime,
        role: str = LEARNER,
        subject: str = "3",
        target_link_uri: str = LAUNCH_URL,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        iat = int(now.timestamp())
        student = role == LEARNER
        who = "student1" if student else "teacher1"
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": subject,
            "nonce": nonce,
            "iat": iat,
            "exp": iat + 60,  # Moodle's id_tokens live 60 s
            "email": f"{who}@example.com",
            "given_name": "Student" if student else "Teacher",
            "family_name": "One",
            "name": "Student One" if student else "Teacher One",
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "lineitem": f"{self.issuer}/mod/lti/services.php/2/lineitems/2/lineitem?type_id=1",
                "lineitems": f"{self.issuer}/mod/lti/services.php/2/lineitems?type_id=1",
                "scope": [
                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                ],
            },
            "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome": {
                "lis_outcome_service_url": f"{self.issuer}/mod/lti/service.php",
                "lis_result_sourcedid": '{"data":{"instanceid":"1","userid":"3"},"hash":"x"}',
            },
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.issuer}/mod/lti/services.php/CourseSection/2/bindings/1/memberships",
                "service_versions": ["1.0", "2.0"],
            },
            LTI + "context": {
                "id": "2",
                "label": "LTI101",
                "title": "LTI 101",
                "type": ["CourseSection"],
            },
            LTI + "custom": {
                "course_title": "LTI 101",
                "user_sis": f"SIS-{who}",
                "prior_programming": "none",
            },
            LTI + "deployment_id": self.deployment_id,
            LTI + "ext": {"lms": "moodle-2", "user_username": who},
            LTI + "launch_presentation": {
                "document_target": "iframe",
                "locale": "en",
                "return_url": f"{self.issuer}/mod/lti/return.php?course=2",
            },
            LTI + "lis": {"course_section_sourcedid": "LTI101", "person_sourcedid": f"SIS-{who}"},
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "resource_link": {
                "description": "Test lti 1",
                "id": "1",
                "title": "Harness activity",
            },
            LTI + "roles": [role],
            LTI + "target_link_uri": target_link_uri,
            LTI + "tool_platform": {
                "description": "Example Moodle",
                "guid": "moodle.example.edu",
                "name": "examplemoodle",
                "product_family_code": "moodle",
                "version": "2024100700",
            },
            LTI + "version": "1.3.0",
        }
        if mutate is not None:
            mutate(claims)
        return copy.deepcopy(claims)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _without_header_field(token: str, name: str) -> str:
    """Re-encode the header without one field (the signature then no longer matches it,
    which is exactly what a token without kid looks like to the tool: unverifiable)."""
    header_b64, payload_b64, signature = token.split(".")
    padded = header_b64 + "=" * (-len(header_b64) % 4)
    header = json.loads(base64.urlsafe_b64decode(padded))
    header.pop(name, None)
    return ".".join([_b64(json.dumps(header).encode()), payload_b64, signature])


def forge_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token built by hand (alg=none, two parts, ...), for the malformed cases."""
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    )
