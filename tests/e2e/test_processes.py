"""Several ``adaptive-lti serve`` processes on one PostgreSQL database, as behind a load balancer.

Two, then four processes share a throw-away database. 300 launches run at once, each one's
login sent to one process and its launch to the next (the OIDC state lives in the database, so
any process can finish a login another began). Every launch must succeed: no "QueuePool limit
reached", no 500. The platform is scripted: its JWKS is served on a loopback socket and its
id_tokens are signed here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from tests.e2e.conftest import E2E_SECRET_KEY, stop_process
from tests.lti.loopback_jwks import LoopbackJwks, free_port
from tests.lti.scripted_platform import LEARNER, ScriptedPlatform

PUBLIC_BASE = "http://tool.example.test"
LAUNCH_URL = PUBLIC_BASE + "/lti/launch"
CONCURRENT_LAUNCHES = 300
START_TIMEOUT_SECONDS = 60


class ServeProcess:
    """One ``adaptive-lti serve`` on a free loopback port; every process has the same public
    base URL, as the processes behind one load balancer have."""

    def __init__(self, database_url: str, log_path: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")
        }
        env.update(
            {
                "ADAPTIVE_LTI_ENVIRONMENT": "test",
                "ADAPTIVE_LTI_SECRET_KEY": E2E_SECRET_KEY,
                "ADAPTIVE_LTI_DATABASE_URL": database_url,
                "ADAPTIVE_LTI_BASE_URL": PUBLIC_BASE,
                "ADAPTIVE_LTI_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **extra_env,
            }
        )
        command = [
            sys.executable,
            *("-m", "adaptive_lti.cli", "serve"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_up(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not answer /healthz in time:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[ScriptedPlatform, LoopbackJwks]]:
    scripted = ScriptedPlatform()
    with LoopbackJwks(scripted.server.keys) as jwks:
        yield scripted, jwks


@pytest.fixture
def database_url(
    new_database_url: Callable[[str], str], platform: tuple[ScriptedPlatform, LoopbackJwks]
) -> str:
    """A throw-away PostgreSQL database at head with the scripted platform registered."""
    url = new_database_url("postgresql")
    migrate.upgrade(url)
    scripted, jwks = platform
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            from adaptive_lti.db import registrations_repo

            registrations_repo.add_registration(
                session,
                issuer=scripted.issuer,
                client_id=scripted.client_id,
                auth_login_url=scripted.auth_login_url,
                auth_token_url=scripted.token_url,
                jwks_url=jwks.url,
                static_jwks=None,
                name="Example Moodle",
                deployment_ids=(scripted.deployment_id,),
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def start_processes(
    database_url: str, tmp_path: Path
) -> Iterator[Callable[[int], list[ServeProcess]]]:
    started: list[ServeProcess] = []

    def start(count: int, **extra_env: str) -> list[ServeProcess]:
        processes = [
            ServeProcess(database_url, tmp_path / f"serve-{len(started) + i}.log", extra_env)
            for i in range(count)
        ]
        started.extend(processes)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for process in processes:
            process.wait_until_up(deadline)
        return processes

    yield start
    for process in started:
        process.stop()


async def _one_launch(
    http: httpx.AsyncClient,
    scripted: ScriptedPlatform,
    login_on: ServeProcess,
    launch_on: ServeProcess,
    subject: str,
) -> str:
    try:
        return await _login_and_launch(http, scripted, login_on, launch_on, subject)
    except httpx.TransportError as error:
        return f"{type(error).__name__}: {error}"


async def _login_and_launch(
    http: httpx.AsyncClient,
    scripted: ScriptedPlatform,
    login_on: ServeProcess,
    launch_on: ServeProcess,
    subject: str,
) -> str:
    """Login on one process, launch on another; what went wrong, or "ok"."""
    login = await http.get(
        login_on.url + "/lti/login",
        params={
            "iss": scripted.issuer,
            "client_id": scripted.client_id,
            "login_hint": subject,
            "target_link_uri": LAUNCH_URL,
            "lti_deployment_id": scripted.deployment_id,
        },
    )
    if login.status_code != 302:
        return f"login {login.status_code}: {login.text[:300]}"
    query = parse_qs(urlsplit(login.headers["location"]).query)
    state, nonce = query["state"][0], query["nonce"][0]
    claims = scripted.claims(
        nonce=nonce,
        now=datetime.now(UTC),
        role=LEARNER,
        subject=subject,
        target_link_uri=LAUNCH_URL,
    )
    launch = await http.post(
        launch_on.url + "/lti/launch",
        data={"id_token": scripted.sign(claims), "state": state},
        headers={"Cookie": f"lti1p3-{state}={state}"},
    )
    if launch.status_code != 200:
        return f"launch {launch.status_code}: {launch.text[:300]}"
    return "ok"


async def _launch_all(
    scripted: ScriptedPlatform, processes: list[ServeProcess], count: int
) -> list[str]:
    # No keep-alive: a connection uvicorn closes as idle is never reused mid-request.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    # Each launch sends its own state cookie; the client keeps none (300 would pile up).
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(
        timeout=60, limits=limits, follow_redirects=False, cookies=no_cookies
    ) as http:
        return await asyncio.gather(
            *(
                _one_launch(
                    http,
                    scripted,
                    processes[i % len(processes)],
                    processes[(i + 1) % len(processes)],
                    subject=f"learner-{len(processes)}-{i}",
                )
                for i in range(count)
            )
        )


@pytest.mark.parametrize("process_count", [2, 4])
def test_concurrent_launches_across_processes_all_succeed(
    process_count: int,
    platform: tuple[ScriptedPlatform, LoopbackJwks],
    start_processes: Callable[[int], list[ServeProcess]],
) -> None:
    scripted, _jwks = platform
    processes = start_processes(process_count)
    started = time.monotonic()
    outcomes = asyncio.run(_launch_all(scripted, processes, CONCURRENT_LAUNCHES))
    elapsed = time.monotonic() - started
    failures = Counter(outcome for outcome in outcomes if outcome != "ok")
    logs = "\n".join(process.log()[-3000:] for process in processes)
    assert not failures, (
        f"{sum(failures.values())} of {CONCURRENT_LAUNCHES} failed in "
        f"{elapsed:.1f} s: {failures.most_common(3)}\n{logs}"
    )
    print(f"{CONCURRENT_LAUNCHES} launches over {process_count} processes: {elapsed:.1f} s")
