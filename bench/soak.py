"""Soak: learners launching and answering at half the measured peak for a long time, watching the
server's memory, with the trivial-endpoint ceiling measured in the same run.

    .venv/bin/python bench/soak.py --minutes 10 --database postgresql|sqlite

It starts ``adaptive-lti demo`` (one process; the example course bound to the demo activity) on a
fresh database, then, from separate load-generator processes (bench/launch.py's HTTP/1.1 client):

1. the ceiling: ``GET /healthz`` as fast as ``--concurrency`` connections can (the baseline);
2. the peak: bench/journey.py's journeys (a new learner launches, answers the intake and the six
   diagnostic questions) at ``--concurrency`` for ``--peak-seconds``;
3. the soak: the same journeys started at a steady half of that peak rate for ``--minutes``,
   while the server's resident memory (VmRSS) is sampled every ``--sample-seconds``.

It prints the ceiling, the peak, the rate held, answer and journey latencies during the soak,
failures, and the server's RSS at the start, median and end of the soak with its slope (MB per
minute, least squares, over the whole soak and over its second half, where a leak shows
without the warm-up's growth).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaptive_lti.demo.platform import DemoPerson, DemoPlatform, load_or_create_platform_key
from bench.harness import fresh_database, percentile, run_coroutine, run_on_clients, running_server
from bench.journey import (
    JourneyResult,
    measure_journeys,
    right_answers,
    walk_to_the_diagnostic_score,
)
from bench.launch import Browser, attempt, measure, synthetic_learners


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return float("nan")
    xs = [t for t, _ in samples]
    ys = [mb for _, mb in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if not spread:
        return float("nan")
    return 60 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


async def soak_async(
    url: str, key_file: str, concurrency: int, rate: float, seconds: float, worker: int
) -> JourneyResult:
    """Start a journey every 1/``rate`` seconds (``concurrency`` learners at most at once)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    platform = DemoPlatform.for_tool(url, load_or_create_platform_key(Path(key_file)))
    right_answer = right_answers()
    learners = synthetic_learners(100)
    result = JourneyResult()
    started = time.perf_counter()
    deadline = started + seconds
    slots = iter(range(10**12))
    first = secrets.randbelow(10**9) * 1_000_000 + worker * 100_000

    async def journey(browser: Browser, person: DemoPerson) -> None:
        await walk_to_the_diagnostic_score(browser, platform, person, right_answer, result)

    async def paced_learner() -> None:
        browser = Browser(host, port)
        while True:
            slot = next(slots)
            start_at = started + slot / rate
            if start_at >= deadline:
                break
            delay = start_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # A new learner in a new browser: a new connection too (one kept idle while waiting
            # for its slot would meet the server's keep-alive timeout).
            browser.connection.close()
            browser.cookies.clear()
            number = first + slot
            base = learners[slot % len(learners)]
            person = DemoPerson(**{**base.__dict__, "key": f"s{number}", "user_id": f"s{number}"})
            if await attempt(browser, journey(browser, person), result.errors, result.journey_ms):
                result.journeys += 1
            else:
                result.failed += 1
        browser.connection.close()

    await asyncio.gather(*(paced_learner() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def run_soak_share(arguments: tuple[str, str, int, float, float, int]) -> JourneyResult:
    return run_coroutine(soak_async(*arguments))


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds in a thread: (seconds, MB)."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - began, rss_mb(self.pid)))
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.samples[-1][0] + 0.001, rss_mb(self.pid)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the soak (10)")
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="postgresql", help="(postgresql)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="connections for the ceiling and peak (32)"
    )
    parser.add_argument(
        "--peak-seconds", type=float, default=15, help="how long the peak is measured (15)"
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=5, help="seconds between RSS samples (5)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=max(1, min(4, (os.cpu_count() or 2) - 1)),
        help="load-generator processes (default: one per spare CPU, at least 1)",
    )
    args = parser.parse_args()
    soak_seconds = args.minutes * 60
    print(
        f"adaptive-lti soak: {args.minutes:g} min on {args.database} at half the peak, "
        f"{args.clients} load-generator process(es), {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="adaptive-lti-soak-") as tmp:
        workdir = Path(tmp)
        with (
            fresh_database(args.database, workdir) as database_url,
            running_server(database_url, workdir) as (url, pid, key_file),
        ):
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.clients) as pool:
                common = (url, key_file, args.concurrency)
                measure_journeys(pool, *common, 2.0, 1000, args.clients, pid)  # warm-up
                ceiling = measure(pool, "healthz", *common, 5.0, 1000, args.clients, pid)
                peak = measure_journeys(pool, *common, args.peak_seconds, 1000, args.clients, pid)
                rate = peak.journeys_per_second / 2
                print(
                    f"  /healthz ceiling {ceiling.per_second:,.0f} req/s; peak "
                    f"{peak.journeys_per_second:.1f} journeys/s ({peak.answers_per_second:.0f} "
                    f"answers/s, answer p99 {peak.answer_p99_ms:.0f} ms); soaking at "
                    f"{rate:.1f} journeys/s",
                    flush=True,
                )
                with RssSampler(pid, args.sample_seconds) as sampler:
                    results, cpu_seconds, wall_seconds = run_on_clients(
                        pool,
                        run_soak_share,
                        lambda share, index: (
                            url,
                            str(key_file),
                            share,
                            rate / args.clients,
                            soak_seconds,
                            index,
                        ),
                        concurrency=args.concurrency,
                        clients=args.clients,
                        server_pid=pid,
                    )
    journeys = sum(r.journeys for r in results)
    failed = sum(r.failed for r in results)
    answer_ms = [value for r in results for value in r.answer_ms]
    journey_ms = [value for r in results for value in r.journey_ms]
    errors: collections.Counter[str] = collections.Counter()
    for r in results:
        errors.update(r.errors)
    samples = sampler.samples
    memory = [mb for _, mb in samples]
    half = [sample for sample in samples if sample[0] >= samples[-1][0] / 2]
    print(
        f"\nsoak: {wall_seconds / 60:.1f} min, {journeys:,} journeys ({journeys / wall_seconds:.1f}"
        f"/s held of {rate:.1f}/s asked), {sum(r.answers for r in results):,} answers, "
        f"{failed} failed; server CPU {100 * cpu_seconds / wall_seconds:.0f} % of a core"
    )
    print(
        f"  answer p50/p99 {percentile(answer_ms, 0.5):.1f}/{percentile(answer_ms, 0.99):.1f} ms;"
        f" journey p99 {percentile(journey_ms, 0.99):.0f} ms"
    )
    print(
        f"  server RSS (MB, {len(samples)} samples every {args.sample_seconds:g} s): start "
        f"{memory[0]:.1f}, median {statistics.median(memory):.1f}, end {memory[-1]:.1f}, max "
        f"{max(memory):.1f}; slope {slope_per_minute(samples):+.2f} MB/min "
        f"(second half {slope_per_minute(half):+.2f} MB/min)"
    )
    print(
        f"  baseline in the same run: /healthz {ceiling.per_second:,.0f} req/s "
        f"(p99 {ceiling.p99_ms:.1f} ms); peak journeys {peak.journeys_per_second:.1f}/s"
    )
    for message, count in errors.most_common(3):
        print(f"  {count} x {message}")


if __name__ == "__main__":
    main()
