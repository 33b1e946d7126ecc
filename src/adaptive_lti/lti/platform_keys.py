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

Under failure (each tool process, per registration):

* one fetch at a time. A launch that needs the keys while another fetches them uses the stale
  cached key when it is the one it names; with nothing cached (a new registration) it waits for
  that fetch, at most the fetch timeout; for an unknown ``kid`` (the refetch a forged token can
  cause) it waits at most ``jwks_fetch_wait_seconds``, then gets the 503 page, and once one
  launch has given up on a fetch, later ones do not wait for it;
* a fetch gives up after ``jwks_fetch_timeout_seconds``;
* after a failed fetch no other is tried for ``jwks_failure_cache_seconds``: launches that would
  need one get the 503 page at once (or the stale cached key, when it is the one they name).

So a hanging or refusing key set URL costs at most one outbound connection per registration per
interval, and one worker thread for the fetch timeout, whatever the number of launches.

Cache writes run in their own short transaction (``db.session.transaction``): the launch that
caused them may still be refused, and the cache and the rate-limit timestamp must survive that.
The request's session hands its connection back first (it has only read the registration), so
no request holds two connections, nor one during the fetch. Every call here is blocking and runs
in FastAPI's threadpool (routes are sync ``def``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
from adaptive_lti.db import platform_key_sets_repo
from adaptive_lti.db.session import end_read_only_transaction, transaction

log = logging.getLogger("adaptive_lti.lti.platform_keys")

MIN_CACHE_SECONDS = 300
DEFAULT_CACHE_SECONDS = 3600
MAX_CACHE_SECONDS = 24 * 3600
FETCH_TIMEOUT_SECONDS = 3.0
FAILURE_CACHE_SECONDS = 30.0
FETCH_WAIT_SECONDS = 0.5
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


@dataclass
class _Fetches:
    """One registration's key set fetches in this process."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # Finished fetches (either way): a waiter sees whether one ended while it waited.
    finished: int = 0
    keys: Mapping[str, Any] | None = None
    failed_at: float | None = None  # time.monotonic() of the last failure, None after a success
    failure: str = ""
    # The fetch (by its number, ``finished`` when it began) a waiter already gave up on: later
    # launches do not wait for it at all, so a hanging platform holds one wave of waiters.
    slow_fetch: int | None = None


ADMIN_CHECKS = (
    "If it keeps happening, the administrator can check the platform registration's JWKS URL "
    "(its key set URL: 'adaptive-lti platform list'; Moodle: <site>/mod/lti/certs.php) and that "
    "the platform is up and reachable from the tool's server."
)


class PlatformKeys:
    """Finds the public key for a launch; owns the JWKS cache of every registration."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        refetch_interval_seconds: int,
        transport: httpx.BaseTransport | None = None,
        on_fetch: Callable[[str], None] | None = None,
        fetch_timeout_seconds: float = FETCH_TIMEOUT_SECONDS,
        failure_cache_seconds: float = FAILURE_CACHE_SECONDS,
        fetch_wait_seconds: float = FETCH_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._refetch_interval = timedelta(seconds=refetch_interval_seconds)
        self._transport = transport
        # A hook for tests and metrics: called with the URL of every outbound fetch.
        self._on_fetch = on_fetch
        self._timeout = fetch_timeout_seconds
        self._failure_cache = failure_cache_seconds
        self._wait = fetch_wait_seconds
        self._clock = clock
        self._fetches: dict[int, _Fetches] = {}
        self._fetches_lock = threading.Lock()

    def key_for(
        self,
        session: Session,
        registration: PlatformRegistrationInfo,
        cached: CachedKeySet,
        kid: str,
        now: datetime,
    ) -> RSAPublicKey:
        """The key ``kid`` of the platform; ``session`` is the request's, which has only read."""
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
            return self._refetch_for_unknown_kid(session, registration, cached, kid, now)
        # Stale or empty cache: an ordinary refresh, not rate limited (bounded by the cache life).
        stale = _find_key(cached.keys, kid)
        state = self._state(registration.id)
        if stale is not None and (
            state.lock.locked() or self._recent_failure(state, registration.jwks_url)
        ):
            return stale  # another launch refreshes the set, or the platform is failing
        try:
            # Nothing else to go on: wait for a fetch in flight as long as it may take.
            keys = self._fetch_once(session, registration, now, forced=False, wait=self._timeout)
        except LaunchError:
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
        session: Session,
        registration: PlatformRegistrationInfo,
        cached: CachedKeySet,
        kid: str,
        now: datetime,
    ) -> RSAPublicKey:
        assert registration.jwks_url is not None
        refused = self._recent_failure(self._state(registration.id), registration.jwks_url)
        if refused is not None:
            raise refused  # the last refetch failed: say so, not "fetched moments ago"
        last = cached.forced_refetch_at
        if last is not None and now - last < self._refetch_interval:
            raise LaunchError(
                CHECK,
                f"The id_token names key {kid!r}, which {registration.issuer} does not publish, "
                "and its key set was fetched again moments ago.",
                hint="If the platform just rotated its keys, launch again in a minute.",
            )
        keys = self._fetch_once(session, registration, now, forced=True, wait=self._wait)
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

    # -- one fetch at a time, none for a while after a failure ---------------------------------

    def _state(self, registration_id: int) -> _Fetches:
        with self._fetches_lock:
            return self._fetches.setdefault(registration_id, _Fetches())

    def _recent_failure(self, state: _Fetches, url: str) -> _KeysUnavailable | None:
        if state.failed_at is None:
            return None
        ago = self._clock() - state.failed_at
        if ago >= self._failure_cache:
            return None
        return _KeysUnavailable(
            f"The platform's keys could not be fetched from {url} {ago:.0f} s ago "
            f"({state.failure}); the tool tries again in {self._failure_cache - ago:.0f} s.",
            state.failure,
        )

    def _fetch_once(
        self,
        session: Session,
        registration: PlatformRegistrationInfo,
        now: datetime,
        *,
        forced: bool,
        wait: float,
    ) -> Mapping[str, Any]:
        url = registration.jwks_url
        assert url is not None
        state = self._state(registration.id)
        refused = self._recent_failure(state, url)
        if refused is not None:
            raise refused
        seen = state.finished
        # The fetch and the cache write need no connection of the request's.
        end_read_only_transaction(session)
        if state.slow_fetch == seen:
            wait = 0.0
        acquired = state.lock.acquire(timeout=wait) if wait > 0 else state.lock.acquire(False)
        if not acquired:
            # Not a failure of the platform's yet: nothing for the failure interval to note.
            state.slow_fetch = seen
            raise LaunchError(
                CHECK,
                f"The platform's keys could not be fetched yet: another launch is fetching them "
                f"from {url}, and the platform is slow to answer.",
                hint="Launch again in a minute. " + ADMIN_CHECKS,
                status_code=503,
            )
        try:
            if state.finished != seen:
                # A fetch ended while this launch waited: its result serves this launch too.
                refused = self._recent_failure(state, url)
                if refused is not None:
                    raise refused
                if state.keys is not None:
                    return state.keys
            try:
                keys = self._fetch_and_store(registration, now, forced=forced)
            except _KeysUnavailable as error:
                state.failed_at, state.failure = self._clock(), error.reason
                raise
            state.keys, state.failed_at = keys, None
            return keys
        finally:
            state.finished += 1
            state.lock.release()

    def _fetch_and_store(
        self, registration: PlatformRegistrationInfo, now: datetime, *, forced: bool
    ) -> Mapping[str, Any]:
        url = registration.jwks_url
        assert url is not None
        try:
            keys, lifetime = self._fetch(url, now)
        except _KeysUnavailable:
            if forced:
                with transaction(self._session_factory) as session:
                    platform_key_sets_repo.note_forced_refetch(session, registration.id, now)
            raise
        with transaction(self._session_factory) as session:
            platform_key_sets_repo.store_key_set(
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
        try:
            with httpx.Client(
                transport=self._transport, timeout=self._timeout, follow_redirects=True
            ) as client:
                response = client.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException as error:
            raise _fetch_failed(
                url, f"no answer within {self._timeout:g} s ({type(error).__name__})"
            ) from None
        except httpx.HTTPError as error:
            raise _fetch_failed(url, f"the connection failed ({type(error).__name__})") from None
        if response.status_code != 200:
            raise _fetch_failed(url, f"it answered HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise _fetch_failed(url, "the answer is too large to be a JWKS")
        try:
            body = response.json()
        except ValueError:
            raise _fetch_failed(url, "the answer is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise _fetch_failed(url, 'the answer is JSON but not a JWKS (no "keys" list)')
        return body, cache_lifetime(response.headers, now)


class _KeysUnavailable(LaunchError):
    """The key set could not be fetched (503): the launch could not be checked at all."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(
            CHECK, message, hint="Launch again in a minute. " + ADMIN_CHECKS, status_code=503
        )
        self.reason = reason


def _fetch_failed(url: str, reason: str) -> _KeysUnavailable:
    return _KeysUnavailable(
        f"The platform's keys could not be fetched from {url}: {reason}.", reason
    )
