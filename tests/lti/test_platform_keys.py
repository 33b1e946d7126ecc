"""The platform JWKS cache: HTTP cache headers, no fetch while fresh, refetch on unknown kid; and
under failure (a key set URL that hangs or refuses, 50 launches at once, through a real server):
one outbound connection per platform per interval, the 503 page, healthy platforms unaffected."""

from __future__ import annotations

import html
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import PlatformRegistrationInfo
from adaptive_lti.db import migrate, platform_key_sets_repo, registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.lti.platform_keys import PlatformKeys, cache_lifetime
from adaptive_lti.web.app import create_app
from tests.lti.harness import isolated_database, tool_settings
from tests.lti.loopback_jwks import LoopbackJwks, refused_url
from tests.lti.scripted_platform import LAUNCH_URL, ScriptedPlatform

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
        return platform_key_sets_repo.load_key_set(session, registration_id)


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


# -- under failure: a real server, a key set URL that hangs or refuses, 50 launches at once -------

BURST = 50
HEALTHY = 8
# A healthy platform's whole launch (login and launch) while the burst is refused, on a shared
# and busy test machine. Before: every worker thread sat in a 5 s fetch, and healthy launches
# took 5.1 s. The tests give fetches 10 s: healthy launches must not wait for the hanging one.
HEALTHY_LAUNCH_BOUND_SECONDS = 4.0
FETCH_TIMEOUT_SECONDS = 10.0


class CountingTransport(httpx.BaseTransport):
    """The real network (httpx's own transport), with every outbound request counted by host."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests[f"{request.url.host}:{request.url.port}"] += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        # Each fetch's client closes its transport; the real one lives until the test ends.
        pass

    def shut(self) -> None:
        self._inner.close()


@dataclass
class LiveTool:
    url: str
    transport: CountingTransport

    def launch(self, id_token: str, state: str, cookie: bool = False) -> httpx.Response:
        headers = {"Cookie": f"lti1p3-{state}={state}"} if cookie else {}
        return httpx.post(
            self.url + "/lti/launch",
            data={"id_token": id_token, "state": state},
            headers=headers,
            timeout=30,
        )

    def full_launch(self, platform: ScriptedPlatform, subject: str) -> tuple[int, float]:
        """A genuine login and launch: (status, seconds taken)."""
        started = time.monotonic()
        login = httpx.get(
            self.url + "/lti/login",
            params={
                "iss": platform.issuer,
                "client_id": platform.client_id,
                "login_hint": subject,
                "target_link_uri": LAUNCH_URL,
                "lti_deployment_id": platform.deployment_id,
            },
            timeout=30,
        )
        assert login.status_code == 302, login.text
        query = parse_qs(urlsplit(login.headers["location"]).query)
        state, nonce = query["state"][0], query["nonce"][0]
        claims = platform.claims(nonce=nonce, now=datetime.now(UTC), subject=subject)
        answer = self.launch(platform.sign(claims), state, cookie=True)
        return answer.status_code, time.monotonic() - started


@contextmanager
def live_tool(database_url: str) -> Iterator[LiveTool]:
    """The app served by uvicorn on a loopback port, in a thread (default key settings but the
    fetch timeout)."""
    transport = CountingTransport()
    app = create_app(
        tool_settings(
            database_url,
            grade_delivery_worker=False,
            jwks_fetch_timeout_seconds=FETCH_TIMEOUT_SECONDS,
        )
    )
    app.state.http_transport = transport
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield LiveTool(f"http://127.0.0.1:{sock.getsockname()[1]}", transport)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        transport.shut()


def register(database_url: str, platform: ScriptedPlatform, jwks_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            registrations_repo.add_registration(
                session,
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_login_url,
                auth_token_url=platform.token_url,
                jwks_url=jwks_url,
                static_jwks=None,
                name=platform.issuer,
                deployment_ids=(platform.deployment_id,),
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()


def forged_launch(platform: ScriptedPlatform, kid: str) -> str:
    """A token naming a key the tool does not have: the tool must fetch the key set to know."""
    claims = platform.claims(nonce="n", now=datetime.now(UTC))
    return platform.sign(claims, kid=kid)


def burst_with_healthy_launches(
    tool: LiveTool, bad: ScriptedPlatform, healthy: ScriptedPlatform, kid: str
) -> tuple[list[httpx.Response], list[tuple[int, float]]]:
    """BURST launches from ``bad`` at once, and HEALTHY genuine launches from ``healthy`` in the
    same moment."""
    with ThreadPoolExecutor(max_workers=BURST + HEALTHY) as pool:
        refused = [
            pool.submit(tool.launch, forged_launch(bad, kid), f"state-burst{i}")
            for i in range(BURST)
        ]
        time.sleep(0.1)  # the burst has reached the tool and holds what it holds
        fine = [pool.submit(tool.full_launch, healthy, f"healthy-{i}") for i in range(HEALTHY)]
        return [f.result() for f in refused], [f.result() for f in fine]


@pytest.fixture
def live_database(backend: str, new_database_url: Callable[[str], str]) -> str:
    url = new_database_url(backend)
    migrate.upgrade(url)
    return url


def assert_keys_unavailable_page(response: httpx.Response, url: str) -> None:
    assert response.status_code == 503, response.text[:500]
    text = html.unescape(response.text)
    assert "keys could not be fetched" in text, text[:2000]
    assert url in text
    assert "JWKS URL" in text and "reachable from the tool" in text
    assert response.headers["retry-after"]


def test_a_hanging_key_set_url_costs_one_connection_and_healthy_launches_stay_fast(
    live_database: str,
) -> None:
    bad = ScriptedPlatform(issuer="https://stuck.example.edu", key_index=1)
    healthy = ScriptedPlatform(issuer="https://fine.example.edu", key_index=2)
    with LoopbackJwks(bad.server.keys) as stuck, LoopbackJwks(healthy.server.keys) as fine:
        register(live_database, bad, stuck.url)
        register(live_database, healthy, fine.url)
        with live_tool(live_database) as tool:
            # Both platforms' keys are cached by a first launch each.
            assert tool.full_launch(bad, "first")[0] == 200
            assert tool.full_launch(healthy, "first")[0] == 200
            stuck.mode = "hang"
            before = stuck.connections
            refused, fine_launches = burst_with_healthy_launches(tool, bad, healthy, "rotated")
            assert stuck.connections - before == 1
            for response in refused:
                assert_keys_unavailable_page(response, stuck.url)
            assert [status for status, _ in fine_launches] == [200] * HEALTHY
            slowest = max(seconds for _, seconds in fine_launches)
            assert slowest < HEALTHY_LAUNCH_BOUND_SECONDS, f"healthy launches took {slowest:.2f} s"
            print(f"hanging key set URL: slowest healthy launch {slowest:.2f} s")
            # Within the failure interval the URL is left alone: refused at once, no connection.
            started = time.monotonic()
            again = tool.launch(forged_launch(bad, "rotated"), "state-again")
            assert_keys_unavailable_page(again, stuck.url)
            assert "tries again in" in html.unescape(again.text)
            assert time.monotonic() - started < 2.0  # no fetch: an instant answer (busy machine)
            assert stuck.connections - before == 1


def test_a_refusing_key_set_url_is_tried_once_for_a_burst_of_first_launches(
    live_database: str,
) -> None:
    bad = ScriptedPlatform(issuer="https://down.example.edu", key_index=1)
    healthy = ScriptedPlatform(issuer="https://fine.example.edu", key_index=2)
    down = refused_url()
    with LoopbackJwks(healthy.server.keys) as fine:
        register(live_database, bad, down)
        register(live_database, healthy, fine.url)
        with live_tool(live_database) as tool:
            assert tool.full_launch(healthy, "first")[0] == 200
            # Nothing cached for the platform that is down: each launch needs a fetch.
            refused, fine_launches = burst_with_healthy_launches(tool, bad, healthy, bad.kid)
            down_host = urlsplit(down).netloc
            assert tool.transport.requests[down_host] == 1
            for response in refused:
                assert_keys_unavailable_page(response, down)
            assert [status for status, _ in fine_launches] == [200] * HEALTHY
            slowest = max(seconds for _, seconds in fine_launches)
            assert slowest < HEALTHY_LAUNCH_BOUND_SECONDS, f"healthy launches took {slowest:.2f} s"
            print(f"refusing key set URL: slowest healthy launch {slowest:.2f} s")
            assert tool.transport.requests[urlsplit(fine.url).netloc] == 1


def test_after_the_failure_interval_the_key_set_is_fetched_again(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    seconds = [1000.0]
    source = PlatformKeys(
        factory,
        refetch_interval_seconds=60,
        transport=platform.transport(),
        failure_cache_seconds=30,
        clock=lambda: seconds[0],
    )
    platform.server.mode = "down"
    for _ in range(3):
        with pytest.raises(LaunchError) as refused:
            source.key_for(
                factory(), registration, cached(factory, registration.id), platform.kid, NOW
            )
        assert refused.value.status_code == 503
    assert len(platform.server.fetches) == 1
    assert "tries again in 30 s" in refused.value.message
    platform.server.mode = "ok"
    seconds[0] += 29
    with pytest.raises(LaunchError, match="tries again in 1 s"):
        source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    seconds[0] += 1
    assert source.key_for(
        factory(), registration, cached(factory, registration.id), platform.kid, NOW
    )
    assert len(platform.server.fetches) == 2


def test_a_stale_key_serves_while_another_launch_refreshes_the_set(setup) -> None:  # type: ignore[no-untyped-def]
    factory, platform, registration = setup
    source = keys_for(factory, platform)
    source.key_for(factory(), registration, cached(factory, registration.id), platform.kid, NOW)
    stale = cached(factory, registration.id)
    later = NOW + timedelta(hours=2)
    answering, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        answering.set()
        release.wait(timeout=10)
        return platform.server.handle(request)

    source = PlatformKeys(factory, refetch_interval_seconds=60, transport=httpx.MockTransport(slow))
    refreshing = threading.Thread(
        target=source.key_for, args=(factory(), registration, stale, platform.kid, later)
    )
    refreshing.start()
    try:
        assert answering.wait(timeout=10)
        started = time.monotonic()
        # No second fetch and no wait: the stale key is the one this token names.
        assert source.key_for(factory(), registration, stale, platform.kid, later)
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        refreshing.join(timeout=10)
    assert len(platform.server.fetches) == 2
