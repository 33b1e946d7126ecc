"""The id_token checks of a launch (Security Framework 1.0 §5.1.3, LTI Core 1.3 §5).

Why our own checks rather than pylti1p3's ``MessageLaunch``: pylti1p3 2.0 reads and checks the
nonce before the signature, never consumes it, does not verify ``aud`` (and compares only the
first audience), has no ``azp`` check, no clock leeway, no refetch on an unknown ``kid``, fetches
the JWKS with blocking ``requests`` on every cache miss, and cannot compare ``target_link_uri``
with the login. Wrapping it would mean overriding nearly every step; the checks are short and
explicit here instead, each one named so the refusal page can say which failed. The RS256
signature itself is checked with ``cryptography`` (the library PyJWT uses underneath), on a token
decoded once (see ``_parse_untrusted``). pylti1p3 stays in
use where it helps: ``lti/toolconf.py`` hands its ``Registration`` to its service clients.

Order matters (row 5 of lti-security.md): the token is parsed without trust only to learn which
registration and key to use; the signature is then verified with that key and RS256 alone; only
then are claims checked, and nothing of the launch (state, nonce, user) is touched until every
check here has passed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import DeploymentInfo, PlatformRegistrationInfo, RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.lti.claims import DEPLOYMENT_ID, check_claim_strings, check_message_claims
from adaptive_lti.lti.platform_keys import PlatformKeys

log = logging.getLogger("adaptive_lti.lti.validation")

ALLOWED_ALGORITHM = "RS256"  # LTI Core 1.3 §5.1.3 / Security Framework §5.4: RS256 only
MAX_ID_TOKEN_CHARS = 64 * 1024
SIGNATURE_CHECK = "signature"


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _base64url_decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): anything else is not a JWS."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass(frozen=True)
class ParsedToken:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


@dataclass(frozen=True)
class VerifiedToken:
    """An id_token whose signature, issuer, audience, times and LTI claims have passed."""

    claims: Mapping[str, Any]
    registration: PlatformRegistrationInfo
    deployment: DeploymentInfo | None
    deployment_id: str
    nonce: str


def _refuse(check: str, message: str, hint: str = "", status_code: int = 401) -> LaunchError:
    return LaunchError(
        check,
        message,
        hint=hint
        or "Launch again from the course page; if it keeps failing, tell the administrator.",
        status_code=status_code,
    )


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return list(aud)
    return []


class LaunchValidator:
    """Verifies id_tokens. The registration is read with the request's session (one pooled
    connection per request); when the platform's keys must be fetched, ``PlatformKeys`` ends
    that read-only transaction before the fetch and its cache write (in a transaction of its
    own: SQLite has one writer, and the write must outlive a refused launch)."""

    def __init__(
        self,
        platform_keys: PlatformKeys,
        *,
        clock_leeway_seconds: int,
        max_token_age_seconds: int,
    ) -> None:
        self._platform_keys = platform_keys
        self._leeway = clock_leeway_seconds
        self._max_age = max_token_age_seconds

    def verify(self, session: Session, id_token: str, now: datetime) -> VerifiedToken:
        """Check ``id_token``; ``session`` is the request's and has written nothing yet."""
        token = self._parse_untrusted(id_token)
        registration, deployment, key_set = self._find_registration(session, token.payload)
        key = self._platform_keys.key_for(session, registration, key_set, token.header["kid"], now)
        try:
            # JWS §5.2 with RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3).
            key.verify(token.signature, token.signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise _refuse(
                SIGNATURE_CHECK,
                "The id_token's signature does not match its content and the platform's key: "
                "it was altered or not signed by the platform.",
            ) from None
        # From here on the payload is the platform's word.
        claims = token.payload
        if claims.get("iss") != registration.issuer:
            raise _refuse("issuer (iss)", "The id_token's issuer is not the registered one.")
        if registration.client_id not in _audiences(claims.get("aud")):
            raise _refuse(
                "audience (aud)",
                f"The id_token is not addressed to this tool's client id {registration.client_id!r}.",
            )
        self._check_authorized_party(claims, registration)
        self._check_times(claims, now)
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise _refuse("nonce", "The id_token carries no nonce.")
        check_message_claims(claims)
        # The deployment was looked up with this same (now verified) deployment_id claim.
        deployment_id = str(claims[DEPLOYMENT_ID])
        return VerifiedToken(claims, registration, deployment, deployment_id, nonce)

    # -- before the signature: parse, never trust --------------------------------------------

    @staticmethod
    def _parse_untrusted(id_token: str) -> ParsedToken:
        """Split and decode the compact JWS (RFC 7515 §7.1) without trusting it.

        Done here rather than with PyJWT: its decoder checks every base64 character in Python,
        about 1.5 ms per decode of a 3 KB id_token, and it would decode the token three times."""
        parts = id_token.split(".")
        if len(id_token) > MAX_ID_TOKEN_CHARS or len(parts) != 3:
            raise _refuse(
                "token format",
                "The id_token is not a signed JWT (three dot-separated parts).",
            )
        try:
            header = json.loads(_base64url_decode(parts[0]))
            payload = json.loads(_base64url_decode(parts[1]))
            signature = _base64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _refuse("token format", "The id_token is not a well-formed JWT.") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise _refuse("token format", "The id_token's header or payload is not a JSON object.")
        # Before any lookup: a NUL or lone surrogate in iss, aud or deployment_id is a 500 on
        # PostgreSQL the moment it reaches a query.
        check_claim_strings(header, "id_token header")
        check_claim_strings(payload)
        algorithm = header.get("alg")
        if algorithm != ALLOWED_ALGORITHM:
            raise _refuse(
                "signing algorithm",
                f"The id_token is signed with {str(algorithm)[:20]!r}; only RS256 is accepted.",
            )
        if "crit" in header:
            # RFC 7515 §4.1.11: extensions we do not understand make the token invalid.
            raise _refuse("token format", "The id_token's header has critical extensions.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 255:
            raise _refuse(
                "key id (kid)",
                "The id_token's header names no key (kid), so its signature cannot be checked.",
            )
        if not signature:
            raise _refuse("signature", "The id_token has no signature.")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        return ParsedToken(header, payload, signing_input, signature)

    def _find_registration(
        self, session: Session, unverified: Mapping[str, Any]
    ) -> tuple[PlatformRegistrationInfo, DeploymentInfo | None, Any]:
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer or len(issuer) > 255:
            raise _refuse("issuer (iss)", "The id_token names no issuer (iss).")
        audiences = _audiences(unverified.get("aud"))
        if not audiences:
            raise _refuse("audience (aud)", "The id_token has no audience (aud).")
        azp = unverified.get("azp")
        candidates = [azp] if isinstance(azp, str) and azp in audiences else audiences
        raw_deployment = unverified.get(DEPLOYMENT_ID)
        deployment_id = raw_deployment if isinstance(raw_deployment, str) else None
        for client_id in candidates[:5]:
            if len(client_id) > 255:
                continue
            found = registrations_repo.lookup_registration(
                session, issuer, client_id, deployment_id
            )
            if found is not None:
                if found.registration.status is not RegistrationStatus.active:
                    raise _refuse(
                        "registration approved",
                        f"The registration of {issuer} (client id {client_id!r}) is waiting for "
                        "an administrator's approval.",
                        f"An administrator can approve it with 'adaptive-lti platform approve "
                        f"{found.registration.id}'.",
                        status_code=403,
                    )
                return found.registration, found.deployment, found.key_set
        known = registrations_repo.registrations_for_issuer(session, issuer)
        if known:
            expected = ", ".join(repr(r.client_id) for r in known)
            shown = audiences[0][:80]
            raise _refuse(
                "audience (aud)",
                f"aud is {shown!r}, expected the client id {expected} registered for {issuer}.",
                "If the activity was created with an LTI 1.1 consumer key, Moodle puts that key in "
                "aud: clear the activity's consumer key (or re-create the activity with the LTI 1.3 "
                "tool). Otherwise register this client id with 'adaptive-lti platform add'.",
            )
        raise _refuse(
            "issuer (iss)",
            f"No platform is registered with the issuer {issuer[:120]!r}.",
            "The issuer must match the registration exactly (scheme, host, no trailing slash). "
            "See 'adaptive-lti platform list'.",
        )

    # -- after the signature -----------------------------------------------------------------

    @staticmethod
    def _check_authorized_party(
        claims: Mapping[str, Any], registration: PlatformRegistrationInfo
    ) -> None:
        """OIDC Core §3.1.3.7 / Security Framework §5.1.3 step 4-5: with several audiences the
        token must name us as authorized party; any azp present must be us."""
        audiences = _audiences(claims.get("aud"))
        azp = claims.get("azp")
        if len(audiences) > 1 and azp is None:
            raise _refuse(
                "authorized party (azp)",
                "The id_token has several audiences but no azp claim naming this tool.",
            )
        if azp is not None and azp != registration.client_id:
            raise _refuse(
                "authorized party (azp)",
                f"The id_token's azp {str(azp)[:80]!r} is not this tool's client id "
                f"{registration.client_id!r}.",
            )

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> None:
        current = now.timestamp()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _refuse("expiry (exp)", "The id_token's exp is not a number.")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise _refuse("issued at (iat)", "The id_token's iat is not a number.")
        clock_hint = "Check that the clocks of the platform and the tool's server are right (NTP)."
        if current > exp + self._leeway:
            raise _refuse(
                "expiry (exp)",
                f"The id_token expired {int(current - exp)} s ago.",
                "Launch again; if it keeps happening: " + clock_hint,
            )
        if iat > current + self._leeway:
            raise _refuse(
                "issued at (iat)",
                f"The id_token was issued {int(iat - current)} s in the future.",
                clock_hint,
            )
        if current - iat > self._max_age + self._leeway:
            raise _refuse(
                "issued at (iat)",
                f"The id_token was issued {int(current - iat)} s ago; the tool accepts tokens "
                f"at most {self._max_age} s old.",
                "Launch again; if it keeps happening: " + clock_hint,
            )
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > current + self._leeway:
            raise _refuse("not before (nbf)", "The id_token is not valid yet (nbf).", clock_hint)
