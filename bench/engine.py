"""Benchmark of the routing engine: ``.venv/bin/python bench/engine.py``.

Prints, each with a baseline measured in the same run:

- one decision's p50/p99 for a generated design of 1,000 activities and a learner with 1,000
  recorded events (target p99 < 1 ms), and what replaying that history would cost instead;
- loading and linting that design (target < 1 s);
- simulating 10,000 learners through the example course (target < 10 s), through the command
  line (worker processes) and in one process;
- how a decision's cost grows with design size (100 / 1,000 / 5,000 activities) and history
  (10 / 1,000 / 10,000 events).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adaptive_lti.cli import main as cli_main  # noqa: E402
from adaptive_lti.core import engine, simulate  # noqa: E402
from adaptive_lti.core.compiled import CompiledDesign  # noqa: E402
from adaptive_lti.core.design import Check  # noqa: E402
from adaptive_lti.core.events import (  # noqa: E402
    Answered,
    Chose,
    Completed,
    Event,
    IntakeAnswered,
    Launched,
    Reset,
)
from adaptive_lti.core.learner import LearnerState  # noqa: E402
from adaptive_lti.core.lint import lint as lint_design  # noqa: E402
from adaptive_lti.core.loader import load_design, load_design_file  # noqa: E402
from bench.design_generator import generate_design  # noqa: E402

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXAMPLE = ROOT / "examples" / "intro-programming"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


class Driver:
    """A learner who answers every question, gets every third check wrong at first, and starts
    over (an instructor's reset) when the route ends, so the history can grow as long as wanted."""

    def __init__(self, design: CompiledDesign) -> None:
        self.design = design
        self.state: LearnerState = engine.start(design)
        self.now = T0
        self.events: list[Event] = []
        self.timings: list[float] = []
        self.checks = 0
        self.pending: list[Event] = []
        self.decision = self.send(Launched(at=self.now, custom={"prior_programming": "none"}))

    def send(self, event: Event) -> engine.Decision:
        start = time.perf_counter()
        self.state, decision = engine.decide(
            self.design, self.state, event, event.at, learner_key="bench"
        )
        self.timings.append(time.perf_counter() - start)
        self.events.append(event)
        self.decision = decision
        return decision

    def next_event(self) -> Event:
        """The event the learner would send next (without sending it)."""
        if self.pending:
            return self.pending[0]
        self.now += timedelta(minutes=3)
        decision = self.decision
        if isinstance(decision, engine.DesignCompleted):
            return Reset(at=self.now, by="bench")
        if isinstance(decision, engine.NeedsInput):
            answers = {q.attribute: q.values[0] for q in decision.questions}
            return IntakeAnswered(at=self.now, activity=decision.activity, answers=answers)
        if isinstance(decision, engine.ChoiceOffered):
            picked = tuple(o.activity for o in decision.options[: max(decision.least, 1)])
            return Chose(at=self.now, choice=decision.choice, picked=picked)
        assert isinstance(decision, engine.NextActivity)
        activity = self.design.activity(decision.activity)
        if isinstance(activity, Check):
            self.checks += 1
            right = self.checks % 3 != 0 or decision.attempt > 1
            for question in activity.questions:
                self.pending.append(
                    Answered(
                        at=self.now,
                        activity=decision.activity,
                        question=question.id,
                        choice=question.answer,
                        correct=right,
                    )
                )
            self.pending.append(Completed(at=self.now, activity=decision.activity))
            return self.pending[0]
        return Completed(at=self.now, activity=decision.activity)

    def step(self) -> None:
        event = self.next_event()
        if self.pending:
            self.pending.pop(0)
        self.send(event)

    def run_until(self, events: int) -> None:
        while len(self.events) < events:
            self.step()


def one_decision(driver: Driver, repeat: int) -> tuple[list[float], list[float]]:
    """The cost of one decision at the learner's current point, measured on their next events.

    The learner's next 50 events (answers, completions that fire branches and remediation,
    choices) are each decided ``repeat / 50`` times from the state they arrive in (decide is pure,
    so this is repeatable), then the learner moves on. Returns wall-clock and CPU-time samples: on
    a busy machine the scheduler's time slices (milliseconds) dominate the wall-clock tail; the
    thread's CPU time is the engine's own cost.
    """
    wall, cpu = [], []
    for _ in range(50):
        event = driver.next_event()
        state, design = driver.state, driver.design
        for _ in range(max(1, repeat // 50)):
            start, start_cpu = time.perf_counter(), time.thread_time()
            engine.decide(design, state, event, event.at, learner_key="bench")
            cpu.append(time.thread_time() - start_cpu)
            wall.append(time.perf_counter() - start)
        driver.step()
    return wall, cpu


def spread(samples: tuple[list[float], list[float]]) -> str:
    wall, cpu = samples
    return (
        f"p50 {us(statistics.median(wall))}, p99 {us(percentile(wall, 0.99))} wall; "
        f"p50 {us(statistics.median(cpu))}, p99 {us(percentile(cpu, 0.99))} CPU"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, pid {os.getpid()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    # --- baselines -----------------------------------------------------------------------------
    design_text = generate_design(1000)
    design = load_design(design_text, "generated.yaml")
    condition = design.condition('prior_programming == "none" or diagnostic-0.score < 0.5')
    values = {"prior_programming": "some", "diagnostic-0.score": 0.7}
    samples = timed(lambda: [condition.test(values.get) for _ in range(1000)], 50)
    condition_cost = statistics.median(samples) / 1000
    table = {f"key-{n}": n for n in range(1000)}
    samples = timed(lambda: [table.get(f"key-{n % 1000}") for n in range(1000)], 50)
    lookup_cost = statistics.median(samples) / 1000
    print("Baselines (this machine, this run)")
    print(f"  one compiled condition (2 comparisons):   {us(condition_cost)}")
    print(f"  one dict lookup with an f-string key:      {us(lookup_cost)}\n")

    # --- load and lint ---------------------------------------------------------------------------
    print(
        f"Generated design: {len(design.design.activities):,} activities, "
        f"{len(design_text) / 1024:,.0f} KiB of YAML"
    )
    loads = timed(lambda: load_design(design_text, "generated.yaml"), 5)
    print(f"  load (parse, validate, compile):  median {statistics.median(loads) * 1000:,.0f} ms")
    lints = timed(lambda: lint_design(design), 3)
    total = statistics.median(loads) + statistics.median(lints)
    verdict = "meets" if total < 1 else "MISSES"
    print(f"  lint:                             median {statistics.median(lints) * 1000:,.0f} ms")
    print(
        f"  load + lint:                      {total * 1000:,.0f} ms ({verdict} the < 1 s target)"
    )
    print()

    # --- one decision with 1,000 events ------------------------------------------------------------
    driver = Driver(design)
    driver.run_until(1000)
    first, during = driver.timings[0], driver.timings[1:1000]
    wall, cpu = one_decision(driver, 3000)
    p50 = statistics.median(wall)
    print("One decision, 1,000-activity design, learner with 1,000 recorded events")
    print(f"  next 50 events, each decided 60 times: {spread((wall, cpu))}")
    for name, samples in (("wall", wall), ("CPU", cpu)):
        verdict = "meets" if percentile(samples, 0.99) < 0.001 else "MISSES"
        print(f"    {name:>4}: {verdict} the p99 < 1 ms target")
    print(
        f"  every decision of the 1,000-event history: p50 {us(statistics.median(during))}, "
        f"p99 {us(percentile(during, 0.99))}, max {us(max(during))}; the first one, which "
        f"builds the design's route index once per process: {first * 1000:,.1f} ms"
    )
    print(f"  = {p50 / condition_cost:,.0f} compiled conditions (p50)")
    replays = timed(lambda: engine.replay(design, driver.events, learner_key="bench"), 3)
    print(
        f"  for comparison, replaying the 1,000 events: {statistics.median(replays) * 1000:,.1f} ms "
        "(why the state keeps the learner's place)\n"
    )

    # --- growth --------------------------------------------------------------------------------------
    print("Growth with design size (learner with 300 events)")
    for size in (100, 1000, 5000):
        sized = load_design(generate_design(size), f"generated-{size}.yaml")
        growing = Driver(sized)
        growing.run_until(300)
        print(
            f"  {len(sized.design.activities):>6,} activities: {spread(one_decision(growing, 2000))}"
        )
    print("Growth with history (1,000-activity design)")
    growing = Driver(design)
    for events in (10, 1000, 10000):
        growing.run_until(events)
        size = len(growing.state.model_dump_json()) / 1024
        print(
            f"  {events:>6,} events: {spread(one_decision(growing, 2000))}; state {size:,.0f} KiB"
        )
    print()

    # --- simulation --------------------------------------------------------------------------------------
    print("Simulating 10,000 learners through examples/intro-programming")
    args = [
        "simulate",
        str(EXAMPLE / "design.yaml"),
        "--personas",
        str(EXAMPLE / "personas.yaml"),
        "-n",
        "10000",
        "--seed",
        "1",
        "--format",
        "json",
    ]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(args)
    cli_seconds = time.perf_counter() - start
    assert code == 0
    verdict = "meets" if cli_seconds < 10 else "MISSES"
    print(
        f"  adaptive-lti simulate -n 10000 ({min(os.cpu_count() or 1, 8)} processes): "
        f"{cli_seconds:,.1f} s ({verdict} the < 10 s target)"
    )
    example = load_design_file(EXAMPLE / "design.yaml")
    personas = simulate.load_personas(example, (EXAMPLE / "personas.yaml").read_text())
    start = time.perf_counter()
    cpu = time.process_time()
    simulate.simulate(example, personas, learners=10000, seed=1, start=T0)
    single = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print(
        f"  in one process: {single:,.1f} s ({cpu:,.1f} s of CPU; "
        f"{single / 10000 * 1000:,.2f} ms per learner)"
    )
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
