"""The platform JWKS cache: HTTP cache headers, no fetch while fresh, refetch on unknown kid."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import PlatformRegistrationInfo
from adaptive_lti.db import lti_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.lti.platform_keys import PlatformKeys, cache_lifetime
from tests.lti.harness import isolated_database
from tests.lti.scripted_platform import ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"cache-control": "public, max-age=7200"}, 7200),
        ({"cache-control": "s-maxage=600, max-age=60"}, 600),
        ({"cache-control": "no-cache"}, 300),  # floor: never a fetch per launch
        ({"cache-control": "max-age=999999999"}, 86400),  # ceiling
        ({"expires": "Tue, 24 Nov 2026 12:00:00 GMT"}, 7200),
        ({"expires": "garbage"}, 300),
        ({}, 3600),
    ],
)
def test_cache_lifetime_follows_http_headers(headers: dict[str, str], seconds: int) -> None:
    assert cache_lifetime(headers, NOW) == timedelta(seconds=seconds)


@pytest.fixture
def setup(
    session_factory: sessionmaker[Session], db_url: str
) -> Iterator[tuple[sessionmaker[Session], ScriptedPlatform, PlatformRegistrationInfo]]:
    with isolated_database(session_factory, db_url) as (factory, _url):
        platform = ScriptedPlatform()
        with transaction(factory) as session:
            registration = platform.register(session, NOW)
        yield factory, platform, registration


def keys_for(
    factory: sessionmaker[Session], platform: ScriptedPlatform, interval: int = 60
) -> PlatformKeys:
    return PlatformKeys(factory, refetch_interval_seconds=interval, transport=platform.transport())


def cached(factory: sessionmaker[Session], registration_id: int):  # type: ignore[no-untyped-def]
    with factory() as session:
        return lti_repo.load_key_set(session, registration_id)


def test_fetch_once_then_serve_from_the_cache(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    source = keys_for(factory, platform)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    state = cached(factory, registration.id)
    assert state.fetched_at == NOW and state.expires_at == NOW + timedelta(hours=1)
    for minutes in (1, 30, 59):
        source.key_for(
            factory(),
            registration,
            cached(factory, registration.id),
            platform.kid,
            NOW + timedelta(minutes=minutes),
        )
    assert len(platform.server.fetches) == 1
    # Once the cache life is over, one ordinary refresh.
    later = NOW + timedelta(minutes=61)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, later)
    assert len(platform.server.fetches) == 2


def test_stale_cache_is_used_when_the_platform_is_down(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    source = keys_for(factory, platform)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    platform.server.mode = "down"
    later = NOW + timedelta(hours=2)
    assert source.key_for(
        factory(), registration, cached(factory, registration.id), platform.kid, later
    )


def test_unknown_kid_refetches_once_per_interval(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    source = keys_for(factory, platform, interval=60)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    with pytest.raises(LaunchError, match="not in the key set"):
        source.key_for(factory(), registration, cached(factory, registration.id), "ghost", NOW)
    with pytest.raises(LaunchError, match="moments ago"):
        source.key_for(
            factory(),
            registration,
            cached(factory, registration.id),
            "ghost",
            NOW + timedelta(seconds=30),
        )
    assert len(platform.server.fetches) == 2
    platform.rotate(2)
    # The rotated key arrives with the next allowed refetch.
    after = NOW + timedelta(seconds=61)
    assert source.key_for(
        factory(), registration, cached(factory, registration.id), platform.kid, after
    )
    assert len(platform.server.fetches) == 3


def test_failed_forced_refetch_still_counts_for_the_rate_limit(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    source = keys_for(factory, platform)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    platform.server.mode = "down"
    with pytest.raises(LaunchError, match="could not be fetched"):
        source.key_for(factory(), registration, cached(factory, registration.id), "ghost", NOW)
    assert cached(factory, registration.id).forced_refetch_at == NOW


@pytest.mark.parametrize(
    ("mode", "words"),
    [("down", "could not be fetched"), ("not-json", "not JSON"), ("http-500", "HTTP 500")],
)
def test_jwks_errors_are_clear(setup, mode: str, words: str) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    platform.server.mode = mode
    with pytest.raises(LaunchError, match=words) as refused:
        keys_for(factory, platform).key_for(
            factory(), registration, cached(factory, registration.id), platform.kid, NOW
        )
    assert refused.value.check == "platform signing key"
    assert platform.jwks_url in refused.value.message


def test_jwks_without_keys_list_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    platform.server.keys = "oops"  # type: ignore[assignment]
    with pytest.raises(LaunchError, match="not a JWKS"):
        keys_for(factory, platform).key_for(
            factory(), registration, cached(factory, registration.id), platform.kid, NOW
        )


def test_keys_of_other_types_or_uses_are_ignored(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    platform.server.keys = [dict(platform.server.keys[0], use="enc")]
    with pytest.raises(LaunchError):
        keys_for(factory, platform).key_for(
            factory(), registration, cached(factory, registration.id), platform.kid, NOW
        )
