"""Journey benchmark: learners launching, answering a check and getting the next decision, against
the real server, with the trivial-endpoint ceiling measured in the same run.

    .venv/bin/python bench/journey.py --concurrency 32 --seconds 10 --database sqlite|postgresql|both

Per database it starts ``adaptive-lti demo`` (which publishes examples/intro-programming and binds
the demo activity to it) on a fresh database, then from separate load-generator processes holds
``--concurrency`` virtual learners, each on its own keep-alive connection (bench/launch.py's
HTTP/1.1 client and launch), measuring:

- the ceiling: ``GET /healthz``, as fast as they can;
- journeys: a new learner launches (login -> id_token -> launch -> the intake page), answers the
  intake, then answers the six diagnostic questions one request each (each answer is recorded as
  an event with the snapshot in one transaction, and the page that comes back carries the
  engine's next decision), ending on the page of the route the diagnostic chose.

It prints answers/s and the p50/p99 latency of one answer (POST /journey/answer -> the next
page), journeys/s and their p99, the ratio of answers/s to the ceiling, and the server's CPU.
``--profile`` samples the server with py-spy during the journey phase (bench/harness.py's
summary, in ms per answer).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import multiprocessing
import multiprocessing.pool
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaptive_lti.core.design import Check
from adaptive_lti.core.loader import load_design_file
from adaptive_lti.demo.platform import (
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
from bench.launch import (
    Browser,
    LaunchFailed,
    Phase,
    attempt,
    measure,
    synthetic_learners,
)

EXAMPLE_DESIGN = Path(__file__).resolve().parents[1] / "examples/intro-programming/design.yaml"
FORM = re.compile(rb'<form method="post" action="([^"]+)"')
HIDDEN = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)">')
RADIO = re.compile(rb'name="(attribute-[^"]+)" value="([^"]+)"')
TARGET_P99_MS = 50.0


# Forms every journey page has (its navigation posts the session too): not the step's own form.
NAVIGATION_ACTIONS = frozenset({"/journey", "/journey/progress"})


def page_form(body: bytes) -> tuple[str, dict[str, str]]:
    """The journey page's own form (the step's, else the first): its action and hidden fields."""
    forms = [
        (urlsplit(html.unescape(match.group(1).decode())).path, match.start())
        for match in FORM.finditer(body)
    ]
    if not forms:
        raise LaunchFailed("no form on the page: " + body[:300].decode(errors="replace"))
    action, start = next(
        ((path, at) for path, at in forms if path not in NAVIGATION_ACTIONS), forms[0]
    )
    end = body.find(b"</form>", start)
    fields = {
        html.unescape(name.decode()): html.unescape(value.decode())
        for name, value in HIDDEN.findall(body[start : end if end >= 0 else len(body)])
    }
    return action, fields


@dataclass
class JourneyResult:
    journeys: int = 0
    answers: int = 0
    failed: int = 0
    answer_ms: list[float] = field(default_factory=list)
    journey_ms: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0


async def launch_page(browser: Browser, platform: DemoPlatform, person: DemoPerson) -> bytes:
    """bench/launch.py's scripted launch, keeping the page the learner lands on."""
    from urllib.parse import parse_qs

    login = platform.login_initiation(person)
    response = await browser.request("POST", "/lti/login", login.fields)
    query = parse_qs(urlsplit(response.header("location") or "").query)
    state, nonce = query.get("state", [""])[0], query.get("nonce", [""])[0]
    if not state:
        raise LaunchFailed(f"login answered {response.status}")
    token = platform.sign(platform.id_token_claims(person, nonce, int(time.time())))
    response = await browser.follow(
        await browser.request("POST", "/lti/launch", {"id_token": token, "state": state})
    )
    if response.status != 200:
        raise LaunchFailed(f"launch ended on {response.status}: {response.body[:200]!r}")
    return response.body


class AnswerTally(Protocol):
    answers: int
    answer_ms: list[float]


def right_answers() -> dict[str, str]:
    """The example design's right choice (its index, as the form posts it) per question id."""
    design = load_design_file(EXAMPLE_DESIGN).design
    return {
        question.id: str(question.choices.index(question.answer))
        for activity in design.activities.values()
        if isinstance(activity, Check)
        for question in activity.questions
    }


async def walk_to_the_diagnostic_score(
    browser: Browser,
    platform: DemoPlatform,
    person: DemoPerson,
    right_answer: dict[str, str],
    tally: AnswerTally,
) -> None:
    """One learner's journey: launch, the intake if asked, the diagnostic answered right until
    its score shows; each answer's time goes to ``tally``."""
    body = await launch_page(browser, platform, person)
    action, fields = page_form(body)
    if action == "/journey/intake":
        answers: dict[str, str] = {}
        for name, value in RADIO.findall(body):
            answers.setdefault(name.decode(), value.decode())
        body = (await browser.request("POST", action, {**fields, **answers})).body
        action, fields = page_form(body)
    while action == "/journey/answer" and fields.get("activity") == "diagnostic":
        started = time.perf_counter()
        response = await browser.request(
            "POST", action, {**fields, "choice": right_answer[fields["question"]]}
        )
        if response.status != 200:
            raise LaunchFailed(f"answer got {response.status}: {response.body[:300]!r}")
        tally.answer_ms.append((time.perf_counter() - started) * 1000)
        tally.answers += 1
        if b"Your score:" in response.body:
            return
        action, fields = page_form(response.body)
    raise LaunchFailed(f"the diagnostic was not offered (form {action})")


async def run_journeys(
    url: str, key_file: str, concurrency: int, seconds: float, people: int, worker: int
) -> JourneyResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    platform = DemoPlatform.for_tool(url, load_or_create_platform_key(Path(key_file)))
    right_answer = right_answers()
    learners = synthetic_learners(people)
    result = JourneyResult()
    deadline = time.perf_counter() + seconds
    # Fresh learners in every phase and every process (the warm-up's must not be resumed).
    first = secrets.randbelow(10**9) * 1_000_000 + worker * 100_000
    counter = iter(range(first, first + 10**12))

    async def journey(browser: Browser, person: DemoPerson) -> None:
        await walk_to_the_diagnostic_score(browser, platform, person, right_answer, result)

    async def virtual_learner() -> None:
        browser = Browser(host, port)
        while time.perf_counter() < deadline:
            number = next(counter)
            browser.cookies.clear()  # each journey is a new learner in a new browser
            # A fresh user id per journey: learners never collide on one enrolment.
            base = learners[number % people]
            person = DemoPerson(**{**base.__dict__, "key": f"j{number}", "user_id": f"j{number}"})
            if await attempt(browser, journey(browser, person), result.errors, result.journey_ms):
                result.journeys += 1
            else:
                result.failed += 1
        browser.connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(virtual_learner() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def run_journey_phase(arguments: tuple[str, str, int, float, int, int]) -> JourneyResult:
    return run_coroutine(run_journeys(*arguments))


@dataclass
class JourneyPhase:
    answers_per_second: float
    journeys_per_second: float
    answer_p50_ms: float
    answer_p99_ms: float
    journey_p99_ms: float
    answers: int
    failed: int
    server_cpu: float
    errors: collections.Counter[str]


def measure_journeys(
    pool: multiprocessing.pool.Pool,
    url: str,
    key_file: Path,
    concurrency: int,
    seconds: float,
    people: int,
    clients: int,
    server_pid: int,
) -> JourneyPhase:
    results, server_cpu_seconds, wall_seconds = run_on_clients(
        pool,
        run_journey_phase,
        lambda share, index: (url, str(key_file), share, seconds, people, index),
        concurrency=concurrency,
        clients=clients,
        server_pid=server_pid,
    )
    elapsed = max(result.seconds for result in results)
    errors: collections.Counter[str] = collections.Counter()
    for result in results:
        errors.update(result.errors)
    answer_ms = [value for result in results for value in result.answer_ms]
    journey_ms = [value for result in results for value in result.journey_ms]
    return JourneyPhase(
        answers_per_second=sum(r.answers for r in results) / elapsed,
        journeys_per_second=sum(r.journeys for r in results) / elapsed,
        answer_p50_ms=percentile(answer_ms, 0.50),
        answer_p99_ms=percentile(answer_ms, 0.99),
        journey_p99_ms=percentile(journey_ms, 0.99),
        answers=sum(r.answers for r in results),
        failed=sum(r.failed for r in results),
        server_cpu=server_cpu_seconds / wall_seconds,
        errors=errors,
    )


def bench_database(backend: str, args: argparse.Namespace) -> tuple[Phase, JourneyPhase, float]:
    with tempfile.TemporaryDirectory(prefix="adaptive-lti-bench-journey-") as tmp:
        workdir = Path(tmp)
        with (
            fresh_database(backend, workdir) as database_url,
            running_server(database_url, workdir) as (url, pid, key_file),
        ):
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.clients) as pool:
                common = (url, key_file, args.concurrency)
                warm = min(2.0, args.seconds)
                measure_journeys(pool, *common, warm, args.people, args.clients, pid)
                ceiling = measure(
                    pool, "healthz", *common, args.seconds, args.people, args.clients, pid
                )
                profile_path = workdir / "profile.txt"
                with profiling(pid, args, profile_path):
                    journeys = measure_journeys(
                        pool, *common, args.seconds, args.people, args.clients, pid
                    )
            rss = peak_rss_mb(pid)
            if args.profile:
                summarise_profile(profile_path, args.profile_rate, journeys.answers)
                kept = Path(args.profile_output or f"bench-journey-profile-{backend}.txt")
                shutil.copy(profile_path, kept)
                print(f"  raw profile (py-spy collapsed stacks, per answer) kept in {kept}")
    return ceiling, journeys, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(
        parser,
        concurrency_help="concurrent learners (32)",
        people_help="learner backgrounds cycled",
    )
    add_profile_arguments(parser, output_help="where to keep the raw profile")
    args = parser.parse_args()
    backends = backends_of(args)
    print(
        f"adaptive-lti journey benchmark: {args.concurrency} concurrent learners, "
        f"{args.seconds:g} s per phase, {args.clients} load-generator process(es), "
        f"{os.cpu_count()} CPUs"
    )
    rows = []
    for backend in backends:
        print(f"\n[{backend}] running...", flush=True)
        ceiling, journeys, rss = bench_database(backend, args)
        for kind, failed, errors in (
            ("healthz", ceiling.failed, ceiling.errors),
            ("journeys", journeys.failed, journeys.errors),
        ):
            if failed:
                print(f"  {kind}: {failed} failed; most common:")
                for message, count in errors.most_common(3):
                    print(f"    {count} x {message}")
        rows.append((backend, ceiling, journeys, rss))
    print(
        "\ndatabase    /healthz req/s  answers/s  answer p50/p99 ms  journeys/s  journey p99 ms"
        "  answers/healthz  server CPU  peak RSS"
    )
    for backend, ceiling, journeys, rss in rows:
        print(
            f"{backend:<11} {ceiling.per_second:>13,.0f}  {journeys.answers_per_second:>9,.0f}"
            f"  {journeys.answer_p50_ms:7.1f} / {journeys.answer_p99_ms:6.1f}"
            f"  {journeys.journeys_per_second:>10,.1f}  {journeys.journey_p99_ms:14.1f}"
            f"  {journeys.answers_per_second / ceiling.per_second:15.3f}"
            f"  {100 * journeys.server_cpu:8.0f} %  {rss:6.0f} MB"
        )
    print(f"target: answer p99 < {TARGET_P99_MS:g} ms at {args.concurrency} concurrent learners")


if __name__ == "__main__":
    main()
