"""Access tokens for the platform's services: the OAuth 2 client-credentials grant with a signed
JWT assertion (1EdTech Security Framework 1.0 §4.1; LTI Advantage), cached in the database.

- The assertion: ``iss`` = ``sub`` = the client id, ``aud`` = the token URL (or the registered
  token audience), a short ``exp``, a unique ``jti``, the signing key's ``kid`` in the header,
  RS256, signed with the tool's newest active key.
- Tokens are cached per (registration, scope set) until shortly before ``expires_in`` runs out,
  so several app processes share them; a 401 from a service drops the cached token and fetches
  a new one, once.
- The response is JSON whatever its Content-Type says: Moodle's ``token.php`` answers
  ``text/html``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol, Self

import httpx
import jwt
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.core.grading import ServiceCallRefused, ServiceSetupProblem, ServiceUnavailable
from adaptive_lti.db import grades_repo, registrations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.lti import keys
from adaptive_lti.lti.service_http import (
    MOODLE_CURL_HINT,
    TEMPORARY_CLIENT_ERRORS,
    body_excerpt,
    describe_transport_error,
    html_error_page,
    new_http_client,
    parse_json_body,
    raise_for_service_status,
)

log = logging.getLogger("adaptive_lti.lti.service_token")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Apache's documentation of the directive that passes the Authorization header to PHP.
CGI_PASS_AUTH_DOCS = "https://httpd.apache.org/docs/2.4/mod/core.html#cgipassauth"  # noqa: S105


class SigningKeySource(Protocol):
    """Gives the key to sign with; ``lti.keys.signing_key`` (the newest active tool key)."""

    def __call__(self, session: Session) -> keys.SigningKey: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def client_assertion(
    *,
    client_id: str,
    audience: str,
    signing_key: keys.SigningKey,
    now: datetime,
    jti: str,
    lifetime: timedelta = timedelta(minutes=5),
) -> str:
    """The signed JWT of Security Framework §4.1.1 that authenticates the tool to the token URL."""
    issued_at = int(now.timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + int(lifetime.total_seconds()),
        "jti": jti,
    }
    return jwt.encode(
        claims,
        signing_key.private_key,
        algorithm=keys.SIGNING_ALGORITHM,
        headers={"kid": signing_key.kid},
    )


class ServiceTokenProvider:
    """Gets, caches and refreshes access tokens, and sends authorised service requests.

    Every database access is its own short transaction from ``session_factory``, so no
    transaction stays open while the platform is called.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        http: httpx.Client,
        *,
        signing_key: SigningKeySource = keys.signing_key,
        clock: Callable[[], datetime] = _utcnow,
        new_jti: Callable[[], str] = lambda: uuid.uuid4().hex,
        refresh_margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self._session_factory = session_factory
        self._http = http
        self._signing_key = signing_key
        self._clock = clock
        self._new_jti = new_jti
        self._refresh_margin = refresh_margin

    def access_token(
        self, registration_id: int, scopes: Iterable[str], *, refresh: bool = False
    ) -> str:
        """A bearer token for these scopes: the cached one, or a new one from the token URL."""
        scope_key = grades_repo.scope_key(frozenset(scopes))
        if not scope_key:
            raise ServiceCallRefused(
                "The tool asked for an access token without any scope.",
                hint="The launch granted no scope for this service: turn the service on for "
                "the tool on the platform.",
            )
        now = self._clock()
        # Reads only: on SQLite this works beside a request that holds the write lock.
        with transaction(self._session_factory) as session:
            if not refresh:
                cached = grades_repo.load_access_token(
                    session, registration_id, scope_key, now + self._refresh_margin
                )
                if cached is not None:
                    return cached
            registration = registrations_repo.get_registration(session, registration_id)
            try:
                signing_key = self._signing_key(session)
            except AdaptiveLtiError as error:  # no active key yet: 'adaptive-lti keys rotate'
                raise ServiceSetupProblem(error.message, hint=error.hint) from error
            assertion = client_assertion(
                client_id=registration.client_id,
                audience=registration.auth_token_audience or registration.auth_token_url,
                signing_key=signing_key,
                now=now,
                jti=self._new_jti(),
            )
        token, expires_in = self._request_token(registration.auth_token_url, assertion, scope_key)
        try:
            # Replaces the cached token too (after a 401, the one the platform refused).
            with transaction(self._session_factory) as session:
                grades_repo.store_access_token(
                    session,
                    registration_id,
                    scope_key,
                    token,
                    now + timedelta(seconds=expires_in),
                    now,
                )
        except OperationalError as error:
            # The database is busy (SQLite: another transaction holds the write lock). The
            # token is good: use it now, and let a later call cache one.
            log.warning("could not cache a service access token: %s", error.orig)
        return token

    def _request_token(self, token_url: str, assertion: str, scope_key: str) -> tuple[str, int]:
        try:
            response = self._http.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": CLIENT_ASSERTION_TYPE,
                    "client_assertion": assertion,
                    "scope": scope_key,
                },
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as error:
            raise ServiceUnavailable(
                "Could not get an access token: " + describe_transport_error(error, token_url),
                hint="The tool will try again later.",
            ) from error
        status = response.status_code
        detail = body_excerpt(response)
        if 400 <= status < 500 and status not in TEMPORARY_CLIENT_ERRORS:
            # A set-up problem (unknown client, key not on the platform): retried, so grades
            # flow again once the administrator fixes it.
            hint = (
                "Check the tool's registration on the platform: the client id, and that "
                "the platform has the tool's public key (its JWKS URL)."
            )
            if html_error_page(response) is not None:
                hint = MOODLE_CURL_HINT
            raise ServiceSetupProblem(
                f"The platform's token endpoint refused the tool (HTTP {status}"
                + (f": {detail}" if detail else "")
                + ").",
                hint=hint,
            )
        raise_for_service_status(response, "token endpoint")
        try:
            body = parse_json_body(response, "token endpoint")
        except ServiceCallRefused as error:  # a maintenance or login page instead of JSON
            raise ServiceUnavailable(error.message, hint="The tool will try again later.") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServiceSetupProblem(
                f"The platform's token endpoint answered without an access_token: {detail}",
                hint="Check the tool's registration on the platform.",
            )
        expires_in = body.get("expires_in", 3600)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = 3600
        return token, max(int(expires_in), 0)

    def send(
        self,
        registration_id: int,
        scopes: Iterable[str],
        build_request: Callable[[str], httpx.Request],
        what: str,
    ) -> httpx.Response:
        """Send a service request with a bearer token; on 401 get a new token and retry once.

        A second 401 with a token the platform has just issued means the platform never saw
        it: on Moodle that is a web server in front of PHP dropping the Authorization header.
        """
        scope_set = frozenset(scopes)
        token = self.access_token(registration_id, scope_set)
        response = self._send(build_request(token), what)
        if response.status_code != 401:
            return response
        log.info("service answered 401 to a cached token; getting a new one (%s)", what)
        token = self.access_token(registration_id, scope_set, refresh=True)
        response = self._send(build_request(token), what)
        if response.status_code == 401:
            raise ServiceSetupProblem(
                f"The platform's {what} rejected a freshly issued access token (HTTP 401 twice). "
                "The web server in front of Moodle (or the platform) most likely strips the "
                "Authorization header before PHP sees it.",
                hint="With Apache and PHP-FPM/CGI add 'CGIPassAuth On' to Moodle's <Directory> "
                f"(see {CGI_PASS_AUTH_DOCS}); with a proxy, forward the Authorization header. "
                "Delivery resumes by itself once the header gets through.",
            )
        return response

    def _send(self, request: httpx.Request, what: str) -> httpx.Response:
        try:
            return self._http.send(request)
        except httpx.TransportError as error:
            raise ServiceUnavailable(
                f"The platform's {what} failed: "
                + describe_transport_error(error, str(request.url)),
                hint="The tool will try again later.",
            ) from error


class PlatformServiceClient:
    """A client of one of a platform's services (AGS, NRPS): ``tokens`` authorises its calls,
    made over ``http`` (closed with the client when the client made it)."""

    def __init__(
        self, tokens: ServiceTokenProvider, http: httpx.Client, *, owns_http: bool = False
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._owns_http = owns_http

    @classmethod
    def open(
        cls, session_factory: sessionmaker[Session], transport: httpx.BaseTransport | None = None
    ) -> Self:
        """A client with its own HTTP client and token provider; ``close()`` it when done."""
        http = new_http_client(transport)
        return cls(ServiceTokenProvider(session_factory, http), http, owns_http=True)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()
