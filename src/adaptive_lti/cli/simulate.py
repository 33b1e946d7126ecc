"""``simulate``: run synthetic learners (personas) through a design before any real learner does.

    adaptive-lti simulate DESIGN.yaml --personas PERSONAS.yaml -n 10000 --seed 1
    adaptive-lti simulate DESIGN.yaml --personas PERSONAS.yaml --walk     # one learner each, explained

Learners are split over worker processes (``--jobs``); learner n depends only on (seed, n), so
the report is the same whatever the number of processes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from adaptive_lti.core import engine, simulate
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.loader import load_design_file
from adaptive_lti.core.simulate import LearnerRecord, PersonaError, PersonasFile, SimulationReport

# Simulated learners start on a fixed Monday morning: reports must not depend on today's date.
SIMULATION_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "simulate",
        help="run synthetic learners through a design and report routes, reach and completion",
        description="Run synthetic learners (a personas file) through the real routing engine "
        "and report the share of learners per route, the reach of each activity, the "
        "remediation load, completion, pass rate and time to complete.",
    )
    command.add_argument("design", help="the design file (YAML)")
    command.add_argument("--personas", required=True, help="the personas file (YAML)")
    command.add_argument(
        "-n", "--learners", type=int, default=1000, help="learners to simulate (default 1000)"
    )
    command.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    command.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="output format"
    )
    command.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="worker processes (default: one per CPU, up to 8, for 2,000 learners or more)",
    )
    command.add_argument(
        "--walk",
        action="store_true",
        help="instead of a report, walk one learner of each persona and explain every decision",
    )
    command.set_defaults(handler=run_simulate)


def _read_personas(design: CompiledDesign, path: str) -> PersonasFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PersonaError(
            f"cannot read the personas file {path}: {error.strerror or error}",
            hint="check the path",
        ) from None
    except UnicodeDecodeError:
        raise PersonaError(
            f"the personas file {path} is not UTF-8 text", hint="save it as UTF-8"
        ) from None
    return simulate.load_personas(design, text, path)


def run_simulate(args: argparse.Namespace) -> int:
    if args.learners < 1:
        print("error: -n must be at least 1 (learners to simulate)", file=sys.stderr)
        return 2
    design = load_design_file(args.design)
    personas = _read_personas(design, args.personas)
    if args.walk:
        walk(design, personas, args.seed, sys.stdout)
        return 0
    jobs = args.jobs or (min(os.cpu_count() or 1, 8) if args.learners >= 2000 else 1)
    progress = _progress_bar(sys.stderr) if sys.stderr.isatty() else None
    if jobs <= 1:
        report = simulate.simulate(
            design,
            personas,
            learners=args.learners,
            seed=args.seed,
            start=SIMULATION_START,
            progress=progress,
        )
    else:
        records = _run_in_processes(args, jobs, progress)
        report = simulate.summarise(design, personas, records, seed=args.seed)
    if progress is not None:
        sys.stderr.write("\n")
    output = {"table": render_table, "json": render_json, "csv": render_csv}[args.format](report)
    sys.stdout.write(output)
    return 0


# --- processes -----------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(design_path: str, personas_path: str) -> None:
    design = load_design_file(design_path)
    _WORKER["design"] = design
    _WORKER["personas"] = _read_personas(design, personas_path)


def _run_chunk(seed: int, first: int, last: int) -> list[LearnerRecord]:
    design, personas = _WORKER["design"], _WORKER["personas"]
    return [
        simulate.simulate_learner(
            design, personas, seed=seed, number=number, start=SIMULATION_START
        )
        for number in range(first, last)
    ]


def _run_in_processes(args: argparse.Namespace, jobs: int, progress: Any) -> list[LearnerRecord]:
    chunk = max(50, args.learners // (jobs * 8))
    bounds = [(n, min(n + chunk, args.learners)) for n in range(0, args.learners, chunk)]
    records: list[LearnerRecord] = []
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_start_worker, initargs=(args.design, args.personas)
    ) as pool:
        futures = [pool.submit(_run_chunk, args.seed, first, last) for first, last in bounds]
        for future in as_completed(futures):
            records.extend(future.result())
            if progress is not None:
                progress(len(records), args.learners)
    return records


def _progress_bar(stream: TextIO) -> Any:
    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} learners")
        stream.flush()

    return show


# --- walking one learner per persona ------------------------------------------------------------


def walk(design: CompiledDesign, personas: PersonasFile, seed: int, out: TextIO) -> None:
    for number, (name, persona) in enumerate(personas.personas.items()):
        run = simulate.run_learner(
            design,
            name,
            persona,
            random.Random(seed * 1_000_003 + number),  # noqa: S311 - simulation, not security
            learner_key=f"walk-{name}",
            start=SIMULATION_START,
            keep_history=True,
        )
        out.write(f"== {name}" + (f": {persona.description}" if persona.description else "") + "\n")
        previous = ""
        for decision in run.decisions:
            text = decision.explanation.learner_text
            if text == previous:
                continue  # the same decision again (e.g. after a start): said once
            previous = text
            out.write(f"  {_headline(decision)}\n      {text}\n")
        outcome = "stuck (no end within the action cap)" if run.stuck else "finished"
        if run.passed is not None:
            outcome += ", passed" if run.passed else ", not passed"
        if run.grade is not None:
            outcome += f", grade {run.grade:g}"
        flags = f"; flags: {', '.join(run.state.flags)}" if run.state and run.state.flags else ""
        out.write(f"  = {outcome}{flags}\n\n")


def _headline(decision: engine.Decision) -> str:
    if isinstance(decision, engine.NextActivity):
        return f"-> {decision.activity} ({decision.reason})"
    if isinstance(decision, engine.ChoiceOffered):
        return f"-> choose '{decision.choice}'"
    if isinstance(decision, engine.NeedsInput):
        return f"-> intake '{decision.activity}' asks {', '.join(q.attribute for q in decision.questions)}"
    return "-> completed"


# --- rendering -----------------------------------------------------------------------------------


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def render_table(report: SimulationReport) -> str:
    lines = [
        f"Simulated {report.learners:,} learners through {report.design} version "
        f"{report.version} (seed {report.seed})",
        "",
    ]

    def shares(title: str, groups: Any) -> None:
        if not groups:
            return
        lines.append(title)
        for group in groups:
            for index, item in enumerate(group.items):
                label = group.name if index == 0 else ""
                lines.append(
                    f"  {label:<24} {item.name:<28} {_percent(item.share):>7}  ({item.count:,})"
                )
        lines.append("")

    shares("Routes (share of learners per branch case)", report.routes)
    shares("Experiment groups", report.groups)
    shares("Choices (share of learners who picked each)", report.choices)
    lines.append("Activities (share of learners sent there at least once)")
    for reach in report.reach:
        lines.append(f"  {reach.activity:<28} {_percent(reach.share):>7}  {reach.title}")
    lines.append("")
    lines.append(
        f"Remediation: {report.remediation_rounds_per_learner:.2f} remedial rounds per learner"
    )
    for step in report.remediation_by_step:
        lines.append(f"  {step.name:<40} {step.share:.2f} per learner")
    for flag in report.flags:
        lines.append(f"  flagged '{flag.name}': {_percent(flag.share)} of learners")
    lines.append("")
    lines.append(
        f"Completed {_percent(report.completion_rate)}, passed {_percent(report.pass_rate)}, "
        f"completion rule satisfied {_percent(report.satisfied_rate)}, "
        f"stuck {_percent(report.stuck_rate)}"
    )
    if report.minutes_mean is not None:
        lines.append(
            f"Time to complete: {report.minutes_mean:g} minutes of activity on average "
            f"(median {report.minutes_median:g}, 90th percentile {report.minutes_p90:g}); "
            f"{report.days_mean:g} days from first launch, pauses included"
        )
    lines.append("")
    lines.append("By persona")
    for persona in report.personas:
        routes = ", ".join(f"{r.name} {_percent(r.share)}" for r in persona.routes[:4])
        lines.append(
            f"  {persona.persona:<18} {persona.learners:>7,} learners  completed "
            f"{_percent(persona.completion_rate)}  passed {_percent(persona.pass_rate)}  {routes}"
        )
    return "\n".join(lines) + "\n"


def render_json(report: SimulationReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def render_csv(report: SimulationReport) -> str:
    """One row per figure: section, name, item, count, share, value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "name", "item", "count", "share", "value"])
    for section, groups in (
        ("route", report.routes),
        ("group", report.groups),
        ("choice", report.choices),
    ):
        for group in groups:
            for item in group.items:
                writer.writerow([section, group.name, item.name, item.count, item.share, ""])
    for reach in report.reach:
        writer.writerow(["reach", reach.activity, reach.title, reach.count, reach.share, ""])
    for step in report.remediation_by_step:
        writer.writerow(["remediation", step.name, "rounds", step.count, step.share, ""])
    for flag in report.flags:
        writer.writerow(["flag", flag.name, "", flag.count, flag.share, ""])
    for persona in report.personas:
        for route in persona.routes:
            writer.writerow(["persona", persona.persona, route.name, route.count, route.share, ""])
    for name, value in (
        ("learners", report.learners),
        ("seed", report.seed),
        ("remediation_rounds_per_learner", report.remediation_rounds_per_learner),
        ("completion_rate", report.completion_rate),
        ("pass_rate", report.pass_rate),
        ("satisfied_rate", report.satisfied_rate),
        ("stuck_rate", report.stuck_rate),
        ("minutes_mean", report.minutes_mean),
        ("minutes_median", report.minutes_median),
        ("minutes_p90", report.minutes_p90),
        ("days_mean", report.days_mean),
    ):
        writer.writerow(["summary", name, "", "", "", "" if value is None else value])
    return buffer.getvalue()
