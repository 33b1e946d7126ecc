"""Launch benchmark: full LTI 1.3 launches against the real server, with its own ceiling.

    .venv/bin/python bench/launch.py --concurrency 32 --seconds 10 --database sqlite|postgresql|both

What it does, per database:
1. starts the real server (``adaptive-lti demo``: uvicorn, one process, uvloop and httptools when
   installed) on a fresh database (a new SQLite file, or a new PostgreSQL database on the server
   of ``ADAPTIVE_LTI_TEST_POSTGRES_URL``, default postgresql://postgres@127.0.0.1:5432/test);
2. from separate load-generator processes, holds ``--concurrency`` virtual browsers, each on its
   own keep-alive connection, and measures in the same run:
   - the ceiling: ``GET /healthz`` (the server's cheapest endpoint), as fast as they can;
   - full launches: ``POST /lti/login`` (OIDC login initiation, answered by a redirect carrying
     state and nonce) -> an id_token signed *by the load generator* with the demo platform's key
     (``demo/platform.py``: the same claims and signing code the demo platform uses) ->
     ``POST /lti/launch`` -> every redirect followed to the learner's page (200). So the measured
     server does only the tool's work; ``--through-platform`` sends each launch through the demo
     platform's pages and auth endpoint instead (two more requests, served by the same process).
   Learners are synthetic (``--people`` distinct users with the personas' backgrounds), so the
   tool records new users as in a real course, not the same seven rows over and over;
3. the same launches against the peer, ``bench/peers/pylti1p3_flask.py`` (the tool pylti1p3's
   documentation shows: Flask, one gunicorn sync worker, no database), once per run; ``--no-peer``
   skips it;
4. prints launches/s, p50/p99 launch latency, the ratio to the ceiling and to the peer, the
   server's CPU use (near 100 % of one core means the server, not the load generator, was the
   limit) and the server process's peak resident memory (VmHWM). Each launch starts with no
   cookies, as a new browser session does.
``--profile`` samples the server with py-spy during the launch phase and prints where time goes.

The load generator speaks HTTP/1.1 itself over asyncio streams (uvloop when installed): a general
client library would cost more CPU than the server's trivial endpoint and cap the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import multiprocessing
import multiprocessing.pool
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaptive_lti.demo.platform import (
    DEMO_CLIENT_ID,
    DEMO_DEPLOYMENT_ID,
    DEMO_PEOPLE,
    DEMO_PLATFORM_PATH,
    ROLE_LEARNER,
    DemoPerson,
    DemoPlatform,
    load_or_create_platform_key,
)
from bench.harness import (
    add_load_arguments,
    add_profile_arguments,
    backends_of,
    fresh_database,
    peak_rss_mb,
    percentile,
    profiling,
    run_coroutine,
    run_on_clients,
    running_server,
    summarise_profile,
)
from bench.peers.serve import running_pylti1p3_peer

TARGET_RATIO = 0.2
TARGET_PEER_RATIO = 2.0  # issue 10: full launches/s at least twice the documented pylti1p3 tool's
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 150.0


# --- a minimal HTTP/1.1 client ------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class HttpConnection:
    """One keep-alive connection, as a browser holds one to a site."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        reader, writer = await self._connect()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            response_headers.append((name.strip().lower(), value.strip()))
        response = Response(status, response_headers, b"")
        length = response.header("content-length")
        if length is not None:
            response.body = await reader.readexactly(int(length))
        elif response.header("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            response.body = b"".join(chunks)
        else:
            response.body = await reader.read()
            self.close()
        if (response.header("connection") or "").lower() == "close":
            self.close()
        return response


class Browser:
    """A virtual browser: one connection and a cookie jar (names only; one site)."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = HttpConnection(host, port)
        self.cookies: dict[str, str] = {}

    def _remember(self, response: Response) -> None:
        for set_cookie in response.all("set-cookie"):
            pair = set_cookie.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if (
                "max-age=0" in set_cookie.lower()
                or "expires=thu, 01 jan 1970" in set_cookie.lower()
            ):
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip().strip('"')

    async def request(
        self, method: str, target: str, form: dict[str, str] | None = None
    ) -> Response:
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            body = urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = await self.connection.request(method, target, headers, body)
        self._remember(response)
        return response

    async def follow(self, response: Response, limit: int = 5) -> Response:
        """Follow redirects (same site) to the page the browser ends on."""
        while response.status in (301, 302, 303, 307) and limit > 0:
            location = response.header("location") or "/"
            parts = urlsplit(location)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            response = await self.request("GET", target)
            limit -= 1
        return response


FORM_ACTION = re.compile(rb'<form method="post" action="([^"]+)"')
HIDDEN_INPUT = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def html_form(body: bytes) -> tuple[str, dict[str, str]]:
    import html

    action = FORM_ACTION.search(body)
    if action is None:
        raise LaunchFailed("no form in the page: " + body[:300].decode(errors="replace"))
    fields = {
        html.unescape(name.decode()): html.unescape(value.decode())
        for name, value in HIDDEN_INPUT.findall(body)
    }
    return html.unescape(action.group(1).decode()), fields


async def attempt(
    browser: Browser,
    operation: Coroutine[Any, Any, None],
    errors: collections.Counter[str],
    latencies_ms: list[float],
) -> bool:
    """One operation of a virtual user: its latency kept, or its failure counted (and the
    connection dropped, as a browser does after an error)."""
    started = time.perf_counter()
    try:
        await operation
    except (LaunchFailed, OSError, asyncio.IncompleteReadError, ValueError) as error:
        errors[f"{type(error).__name__}: {str(error)[:160]}"] += 1
        browser.connection.close()
        return False
    latencies_ms.append((time.perf_counter() - started) * 1000)
    return True


class LaunchFailed(Exception):
    pass


# --- the load generator ---------------------------------------------------------------------------


def synthetic_learners(count: int) -> list[DemoPerson]:
    """``count`` distinct learners, each with the background of one of the demo personas."""
    personas = [person for person in DEMO_PEOPLE if ROLE_LEARNER in person.roles]
    learners = []
    for number in range(count):
        persona = personas[number % len(personas)]
        learners.append(
            DemoPerson(
                key=f"bench{number}",
                user_id=str(100_000 + number),
                username=f"bench{number}",
                given_name=persona.given_name,
                family_name=f"Bench{number}",
                email=f"bench{number}@bench.example",
                roles=persona.roles,
                background=persona.background,
                locale=persona.locale,
                custom=dict(persona.custom),
            )
        )
    return learners


@dataclass
class PhaseResult:
    completed: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0


async def scripted_launch(
    browser: Browser, platform: DemoPlatform, person: DemoPerson, base_path: str
) -> None:
    """Login -> id_token signed here -> launch -> the tool's page."""
    # Each launch is a new browser session: cookies from the last one (pylti1p3 sets one per
    # login state) would pile up into the request headers.
    browser.cookies.clear()
    login = platform.login_initiation(person)
    response = await browser.request("POST", base_path + "/lti/login", login.fields)
    if response.status not in (302, 303):
        raise LaunchFailed(f"login answered {response.status}: {response.body[:200]!r}")
    query = parse_qs(urlsplit(response.header("location") or "").query)
    state, nonce = query.get("state", [""])[0], query.get("nonce", [""])[0]
    if not state or not nonce:
        raise LaunchFailed(f"login redirect without state/nonce: {response.header('location')}")
    token = platform.sign(platform.id_token_claims(person, nonce, int(time.time())))
    response = await browser.request(
        "POST", base_path + "/lti/launch", {"id_token": token, "state": state}
    )
    response = await browser.follow(response)
    if response.status != 200:
        raise LaunchFailed(f"launch ended on {response.status}: {response.body[:200]!r}")


async def platform_launch(browser: Browser, person: DemoPerson, base_path: str) -> None:
    """The same through the demo platform: its launch button and its auth endpoint."""
    response = await browser.request(
        "POST", base_path + "/demo-platform/launch", {"person": person.key}
    )
    action, fields = html_form(response.body)
    response = await browser.request("POST", urlsplit(action).path, fields)
    location = urlsplit(response.header("location") or "")
    response = await browser.request("GET", f"{location.path}?{location.query}")
    action, fields = html_form(response.body)
    if "error" in fields:
        raise LaunchFailed(f"the demo platform refused: {fields}")
    response = await browser.follow(await browser.request("POST", urlsplit(action).path, fields))
    if response.status != 200:
        raise LaunchFailed(f"launch ended on {response.status}: {response.body[:200]!r}")


async def run_phase_async(
    kind: str,
    url: str,
    key_file: str,
    concurrency: int,
    seconds: float,
    people: int,
    worker_index: int,
) -> PhaseResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    platform = DemoPlatform.for_tool(url, load_or_create_platform_key(Path(key_file)))
    if kind == "launch-without-design":
        # Another activity of the course, bound to no learning design: the tool records the
        # launch and shows its page without starting a learner's journey.
        activity = dataclasses.replace(
            platform.activity, course_module_id="8", resource_link_id="2", custom={}
        )
        platform = dataclasses.replace(platform, activity=activity)
    learners = synthetic_learners(people)
    demo_learners = [person for person in DEMO_PEOPLE if ROLE_LEARNER in person.roles]
    result = PhaseResult()
    deadline = time.perf_counter() + seconds
    counter = iter(range(worker_index * 1_000_000, 10**12))

    async def one(browser: Browser, number: int) -> None:
        if kind == "healthz":
            response = await browser.request("GET", "/healthz")
            if response.status != 200:
                raise LaunchFailed(f"/healthz answered {response.status}")
        elif kind in ("launch", "launch-without-design"):
            await scripted_launch(browser, platform, learners[number % people], "")
        else:
            await platform_launch(browser, demo_learners[number % len(demo_learners)], "")

    async def virtual_user() -> None:
        browser = Browser(host, port)
        while time.perf_counter() < deadline:
            number = next(counter)
            if await attempt(browser, one(browser, number), result.errors, result.latencies_ms):
                result.completed += 1
            else:
                result.failed += 1
        browser.connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(virtual_user() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def run_phase(arguments: tuple[str, str, str, int, float, int, int]) -> PhaseResult:
    return run_coroutine(run_phase_async(*arguments))


@dataclass
class Phase:
    kind: str
    completed: int
    failed: int
    per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # fraction of one core
    server_cpu_ms_per_operation: float  # the server process's CPU time per completed operation
    errors: collections.Counter[str]


def measure(
    pool: multiprocessing.pool.Pool,
    kind: str,
    url: str,
    key_file: Path,
    concurrency: int,
    seconds: float,
    people: int,
    clients: int,
    server_pid: int,
) -> Phase:
    results, server_cpu_seconds, wall_seconds = run_on_clients(
        pool,
        run_phase,
        lambda share, index: (kind, url, str(key_file), share, seconds, people, index),
        concurrency=concurrency,
        clients=clients,
        server_pid=server_pid,
    )
    latencies = [value for result in results for value in result.latencies_ms]
    completed = sum(result.completed for result in results)
    errors: collections.Counter[str] = collections.Counter()
    for result in results:
        errors.update(result.errors)
    elapsed = max(result.seconds for result in results)
    return Phase(
        kind=kind,
        completed=completed,
        failed=sum(result.failed for result in results),
        per_second=completed / elapsed,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        server_cpu=server_cpu_seconds / wall_seconds,
        server_cpu_ms_per_operation=1000 * server_cpu_seconds / max(completed, 1),
        errors=errors,
    )


# --- main --------------------------------------------------------------------------------------


def bench_database(backend: str, args: argparse.Namespace) -> dict[str, Phase | float]:
    kind = "platform" if args.through_platform else "launch"
    if args.without_design:
        kind = "launch-without-design"
    with tempfile.TemporaryDirectory(prefix="adaptive-lti-bench-") as tmp:
        workdir = Path(tmp)
        with (
            fresh_database(backend, workdir) as database_url,
            running_server(database_url, workdir, args.server_module) as (url, pid, key_file),
        ):
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.clients) as pool:
                common = (url, key_file, args.concurrency)
                # Warm up (imports, JIT-free caches, connection pools, the first user rows).
                measure(pool, kind, *common, min(2.0, args.seconds), args.people, args.clients, pid)
                ceiling = measure(
                    pool, "healthz", *common, args.seconds, args.people, args.clients, pid
                )
                profile_path = workdir / "profile.txt"
                with profiling(pid, args, profile_path):
                    launches = measure(
                        pool, kind, *common, args.seconds, args.people, args.clients, pid
                    )
            rss = peak_rss_mb(pid)
            if args.profile:
                summarise_profile(profile_path, args.profile_rate, launches.completed)
                if args.profile_output:
                    kept = Path(args.profile_output.replace("{database}", backend))
                    shutil.copy(profile_path, kept)
                    print(f"  raw profile (py-spy collapsed stacks) kept in {kept}")
    return {"ceiling": ceiling, "launches": launches, "rss": rss}


def print_failures(name: str, phase: Phase) -> None:
    if phase.failed:
        print(f"  {name}: {phase.failed} failed; most common:")
        for message, count in phase.errors.most_common(3):
            print(f"    {count} x {message}")


def bench_peer(args: argparse.Namespace) -> tuple[Phase, float]:
    """The same launches against the pylti1p3 + Flask tool of bench/peers (no database)."""
    with tempfile.TemporaryDirectory(prefix="adaptive-lti-peer-") as tmp:
        workdir = Path(tmp)
        key_file = workdir / "platform-key.pem"
        key = load_or_create_platform_key(key_file)
        with running_pylti1p3_peer(
            workdir, DEMO_PLATFORM_PATH, DEMO_CLIENT_ID, DEMO_DEPLOYMENT_ID, key.public_jwks()
        ) as (url, pid):
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.clients) as pool:
                common = (url, key_file, args.concurrency)
                measure(
                    pool, "launch", *common, min(2.0, args.seconds), args.people, args.clients, pid
                )
                launches = measure(
                    pool, "launch", *common, args.seconds, args.people, args.clients, pid
                )
            rss = peak_rss_mb(pid)
    return launches, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(
        parser, concurrency_help="concurrent launches (32)", people_help="distinct learners (1000)"
    )
    parser.add_argument(
        "--through-platform",
        action="store_true",
        help="send launches through the demo platform's auth endpoint instead of signing here",
    )
    parser.add_argument(
        "--without-design",
        action="store_true",
        help="launch an activity bound to no learning design (the LTI work alone)",
    )
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help="skip the pylti1p3 + Flask peer (bench/peers) measured in the same run",
    )
    add_profile_arguments(parser, output_help="keep the raw profile here ({database} is replaced)")
    parser.add_argument(
        "--server-module",
        default="adaptive_lti.cli",
        help="module run as the server's command line (to try a patched server)",
    )
    args = parser.parse_args()

    backends = backends_of(args)
    how = (
        "through the demo platform's auth endpoint (same server)"
        if args.through_platform
        else "id_token signed by the load generator"
    )
    if args.without_design:
        how += "; an activity with no learning design (LTI work only)"
    print(
        f"adaptive-lti launch benchmark: {args.concurrency} concurrent, {args.seconds:g} s per "
        f"phase, {args.clients} load-generator process(es), {os.cpu_count()} CPUs; {how}"
    )
    rows = []
    for backend in backends:
        print(f"\n[{backend}] running...", flush=True)
        measured = bench_database(backend, args)
        ceiling, launches, rss = measured["ceiling"], measured["launches"], measured["rss"]
        assert isinstance(ceiling, Phase) and isinstance(launches, Phase)
        assert isinstance(rss, float)
        for phase in (ceiling, launches):
            print_failures(phase.kind, phase)
        rows.append((backend, ceiling, launches, rss))
    peer: Phase | None = None
    peer_rss = 0.0
    if not args.no_peer and not args.through_platform and not args.without_design:
        print("\n[pylti1p3 peer] running...", flush=True)
        peer, peer_rss = bench_peer(args)
        print_failures("peer", peer)

    print(
        "\ndatabase    /healthz req/s  (p50/p99 ms)   launches/s  p50 ms  p99 ms  ratio  "
        "server CPU (healthz/launch)  peak RSS"
    )
    for backend, ceiling, launches, rss in rows:
        print(
            f"{backend:<11} {ceiling.per_second:>13,.0f}  ({ceiling.p50_ms:4.1f}/{ceiling.p99_ms:5.1f})"
            f"   {launches.per_second:>10,.0f}  {launches.p50_ms:6.1f}  {launches.p99_ms:6.1f}"
            f"  {launches.per_second / ceiling.per_second:5.3f}"
            f"  {100 * ceiling.server_cpu:5.0f} % / {100 * launches.server_cpu:4.0f} %"
            f"             {rss:5.0f} MB"
        )
    if peer is not None:
        print(
            f"{'pylti1p3':<11} {'':>13}  {'':11}   {peer.per_second:>10,.0f}  {peer.p50_ms:6.1f}"
            f"  {peer.p99_ms:6.1f}         {'':>7}{100 * peer.server_cpu:4.0f} %"
            f"             {peer_rss:5.0f} MB   (Flask, one gunicorn sync worker, no database)"
        )
        for backend, _ceiling, launches, _rss in rows:
            print(
                f"  {backend}: ours / peer {launches.per_second / max(peer.per_second, 1e-9):.2f}x "
                f"launches/s; CPU per launch ours {launches.server_cpu_ms_per_operation:.2f} ms, "
                f"peer {peer.server_cpu_ms_per_operation:.2f} ms"
            )
    print("\nserver CPU time per operation (robust when other work shares the machine):")
    for backend, ceiling, launches, _rss in rows:
        cost_ratio = ceiling.server_cpu_ms_per_operation / launches.server_cpu_ms_per_operation
        print(
            f"{backend:<11} /healthz {1000 * ceiling.server_cpu_ms_per_operation:6.0f} µs, "
            f"launch {launches.server_cpu_ms_per_operation:6.2f} ms: a launch costs "
            f"{1 / cost_ratio:5.1f} trivial requests (CPU ratio {cost_ratio:5.3f})"
        )
    print(
        f"targets: ratio >= {TARGET_RATIO} (a launch costs at most 5 trivial requests), "
        f"ours >= {TARGET_PEER_RATIO:g}x the peer's launches/s, "
        f"p99 < {TARGET_P99_MS:g} ms at 32 concurrent launches, peak RSS < {TARGET_RSS_MB:g} MB"
    )
    for backend, ceiling, launches, rss in rows:
        misses = []
        if launches.per_second / ceiling.per_second < TARGET_RATIO:
            misses.append("ratio")
        if launches.p99_ms >= TARGET_P99_MS:
            misses.append("p99")
        if rss >= TARGET_RSS_MB:
            misses.append("memory")
        if launches.failed:
            misses.append(f"{launches.failed} failed launches")
        if peer is not None and launches.per_second < TARGET_PEER_RATIO * peer.per_second:
            misses.append("peer ratio")
        print(
            f"  {backend}: " + ("all targets met" if not misses else "missed: " + ", ".join(misses))
        )


if __name__ == "__main__":
    main()
