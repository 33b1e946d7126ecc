"""The platforms' public keys: fetched with httpx, cached in the database, parsed once.

A launch needs the key named by the id_token's ``kid``. The key set comes from the registration's
static JWKS, or from its JWKS URL, fetched when the cache is empty or stale and kept as long as
the response's ``Cache-Control: max-age`` / ``Expires`` allow (clamped to
[``MIN_CACHE_SECONDS``, ``MAX_CACHE_SECONDS``] so a ``no-cache`` platform does not cost a fetch
per launch, and a platform that never says does not keep a key for ever). A normal launch makes
no network call. An unknown ``kid`` means the platform may have rotated its key: the set is
fetched once more, at most once per ``Settings.jwks_refetch_interval_seconds`` per registration
(Security Framework §6.3, key rotation), so a flood of forged kids cannot turn the tool into a
request amplifier.

Cache writes run in their own short transaction (``db.session.transaction``): the launch that
caused them may still be refused, and the cache and the rate-limit timestamp must survive that.
Every call here is blocking and runs in FastAPI's threadpool (routes are sync ``def``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import CachedKeySet, PlatformRegistrationInfo
from adaptive_lti.db import lti_repo
from adaptive_lti.db.session import transaction

log = logging.getLogger("adaptive_lti.lti.platform_keys")

MIN_CACHE_SECONDS = 300
DEFAULT_CACHE_SECONDS = 3600
MAX_CACHE_SECONDS = 24 * 3600
FETCH_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 256 * 1024
CHECK = "platform signing key"


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> timedelta:
    """How long a fetched JWKS may be used, from its HTTP cache headers (RFC 9111 §4.2.1)."""
    seconds: float | None = None
    cache_control = headers.get("cache-control", "")
    directives = {}
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    for name in ("s-maxage", "max-age"):
        if name in directives:
            try:
                seconds = float(directives[name])
                break
            except ValueError:
                continue
    if seconds is None and ("no-cache" in directives or "no-store" in directives):
        seconds = 0
    if seconds is None and headers.get("expires"):
        try:
            expires = parsedate_to_datetime(headers["expires"])
            seconds = (expires - now).total_seconds()
        except (TypeError, ValueError, OverflowError):
            seconds = 0  # RFC 9111 §5.3: an invalid Expires means "already expired"
    if seconds is None:
        seconds = DEFAULT_CACHE_SECONDS
    return timedelta(seconds=min(max(seconds, MIN_CACHE_SECONDS), MAX_CACHE_SECONDS))


@lru_cache(maxsize=256)
def _parse_public_key(jwk_json: str) -> RSAPublicKey:
    key = RSAAlgorithm.from_jwk(jwk_json)
    if not isinstance(key, RSAPublicKey):
        raise TypeError("not an RSA public key")
    return key


def _find_key(key_set: Mapping[str, Any] | None, kid: str) -> RSAPublicKey | None:
    if not key_set:
        return None
    keys = key_set.get("keys")
    if not isinstance(keys, list):
        return None
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            return _parse_public_key(json.dumps(jwk, sort_keys=True))
        except (TypeError, ValueError, KeyError):
            continue
    return None


class PlatformKeys:
    """Finds the public key for a launch; owns the JWKS cache of every registration."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        refetch_interval_seconds: int,
        transport: httpx.BaseTransport | None = None,
        on_fetch: Callable[[str], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._refetch_interval = timedelta(seconds=refetch_interval_seconds)
        self._transport = transport
        # A hook for tests and metrics: called with the URL of every outbound fetch.
        self._on_fetch = on_fetch

    def key_for(
        self,
        registration: PlatformRegistrationInfo,
        cached: CachedKeySet,
        kid: str,
        now: datetime,
    ) -> RSAPublicKey:
        if registration.static_jwks is not None:
            key = _find_key(registration.static_jwks, kid)
            if key is None:
                raise LaunchError(
                    CHECK,
                    f"The id_token was signed with key {kid!r}, which is not in the static key set "
                    f"registered for {registration.issuer}.",
                    hint="Update the platform's key set: 'adaptive-lti platform remove' and add it "
                    "again with the current keys, or register its JWKS URL instead.",
                )
            return key
        if registration.jwks_url is None:
            raise LaunchError(
                CHECK,
                f"The registration of {registration.issuer} has neither a JWKS URL nor a key set.",
                hint="Register the platform again with --jwks-url.",
            )
        fresh = (
            cached.keys is not None and cached.expires_at is not None and cached.expires_at > now
        )
        if fresh:
            key = _find_key(cached.keys, kid)
            if key is not None:
                return key
            return self._refetch_for_unknown_kid(registration, cached, kid, now)
        # Stale or empty cache: an ordinary refresh, not rate limited (bounded by the cache life).
        try:
            keys = self._fetch_and_store(registration, now, forced=False)
        except LaunchError:
            stale = _find_key(cached.keys, kid)
            if stale is not None:
                log.warning(
                    "JWKS refresh for %s failed; using the stale cached key %s",
                    registration.issuer,
                    kid,
                )
                return stale
            raise
        key = _find_key(keys, kid)
        if key is None:
            raise self._unknown_kid(registration, kid)
        return key

    def _refetch_for_unknown_kid(
        self,
        registration: PlatformRegistrationInfo,
        cached: CachedKeySet,
        kid: str,
        now: datetime,
    ) -> RSAPublicKey:
        last = cached.forced_refetch_at
        if last is not None and now - last < self._refetch_interval:
            raise LaunchError(
                CHECK,
                f"The id_token names key {kid!r}, which {registration.issuer} does not publish, "
                "and its key set was fetched again moments ago.",
                hint="If the platform just rotated its keys, launch again in a minute.",
            )
        keys = self._fetch_and_store(registration, now, forced=True)
        key = _find_key(keys, kid)
        if key is None:
            raise self._unknown_kid(registration, kid)
        return key

    @staticmethod
    def _unknown_kid(registration: PlatformRegistrationInfo, kid: str) -> LaunchError:
        return LaunchError(
            CHECK,
            f"The id_token names key {kid!r}, which is not in the key set {registration.issuer} "
            f"publishes at {registration.jwks_url}.",
            hint="Check that the platform registration's JWKS URL is the platform's own "
            "(Moodle: <site>/mod/lti/certs.php).",
        )

    def _fetch_and_store(
        self, registration: PlatformRegistrationInfo, now: datetime, *, forced: bool
    ) -> Mapping[str, Any]:
        url = registration.jwks_url
        assert url is not None
        try:
            keys, lifetime = self._fetch(url, now)
        except LaunchError:
            if forced:
                with transaction(self._session_factory) as session:
                    lti_repo.note_forced_refetch(session, registration.id, now)
            raise
        with transaction(self._session_factory) as session:
            lti_repo.store_key_set(
                session,
                registration.id,
                keys,
                fetched_at=now,
                expires_at=now + lifetime,
                forced=forced,
            )
        return keys

    def _fetch(self, url: str, now: datetime) -> tuple[dict[str, Any], timedelta]:
        if self._on_fetch is not None:
            self._on_fetch(url)
        hint = (
            "Check that the platform is up and that the registration's JWKS URL is right "
            "(Moodle: <site>/mod/lti/certs.php); then launch again."
        )
        try:
            with httpx.Client(
                transport=self._transport, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True
            ) as client:
                response = client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise LaunchError(
                CHECK,
                f"The platform's key set could not be fetched from {url} ({type(error).__name__}).",
                hint=hint,
            ) from None
        if response.status_code != 200:
            raise LaunchError(
                CHECK,
                f"The platform's key set URL {url} answered HTTP {response.status_code}.",
                hint=hint,
            )
        if len(response.content) > MAX_JWKS_BYTES:
            raise LaunchError(
                CHECK, f"The platform's key set at {url} is too large to be a JWKS.", hint=hint
            )
        try:
            body = response.json()
        except ValueError:
            raise LaunchError(
                CHECK, f"The platform's key set at {url} is not JSON.", hint=hint
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise LaunchError(
                CHECK,
                f'The platform\'s key set at {url} is JSON but not a JWKS (no "keys" list).',
                hint=hint,
            )
        return body, cache_lifetime(response.headers, now)
