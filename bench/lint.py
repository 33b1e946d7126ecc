"""Design tools benchmark: loading (with line-accurate errors) and linting generated designs.

    .venv/bin/python bench/lint.py [--sizes 100 1000 3000] [--repeats 5]

For each size it generates a design (``bench/design_generator.py``: every construct of the
language, shaped like the reference course), then measures, best and median of ``--repeats``:

- the baselines, in the same run: PyYAML's ``yaml.load`` with the libyaml C loader (plain values,
  no positions) and ``yaml.compose`` (a node tree with marks) — what the reference measurements
  compare against (227 ms and 172 ms for 1,000 activities on the reference machine);
- ``load_design``: bytes to a ``CompiledDesign`` with its source map (events to values, pydantic
  validation, every condition compiled);
- ``lint``: every check, on the loaded design.

Targets (issue 3): load + lint of a 1,000-activity design well under 1 s; lint alone < 1 s.
``measure(size)`` returns the figures, so another benchmark can print them beside its own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from bench.design_generator import generate_design


def _timed(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(best, median) wall time in seconds over ``repeats`` runs, after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def measure(activity_count: int = 1000, repeats: int = 5) -> dict[str, Any]:
    """Figures for one generated design: sizes and (best, median) seconds per step."""
    text = generate_design(activity_count)
    compiled = load_design(text)
    problems = lint(compiled)
    return {
        "activities": len(compiled.design.activities),
        "kib": len(text.encode()) / 1024,
        "conditions": len(compiled.conditions),
        "lint_problems": len(problems),
        "yaml_load_c": _timed(lambda: yaml.load(text, Loader=yaml.CSafeLoader), repeats),
        "yaml_compose_c": _timed(lambda: yaml.compose(text, Loader=yaml.CSafeLoader), repeats),
        "load_design": _timed(lambda: load_design(text), repeats),
        "lint": _timed(lambda: lint(compiled), repeats),
    }


def format_figures(figures: dict[str, Any]) -> list[str]:
    def ms(key: str) -> str:
        best, median = figures[key]
        return f"{best * 1000:7.1f} ms best {median * 1000:7.1f} ms median"

    load_and_lint = figures["load_design"][1] + figures["lint"][1]
    return [
        f"design of {figures['activities']} activities ({figures['kib']:.0f} KiB, "
        f"{figures['conditions']} distinct conditions, {figures['lint_problems']} lint findings)",
        f"  baseline yaml.load (C)     {ms('yaml_load_c')}",
        f"  baseline yaml.compose (C)  {ms('yaml_compose_c')}",
        f"  load_design                {ms('load_design')}",
        f"  lint                       {ms('lint')}",
        f"  load + lint (median)       {load_and_lint * 1000:7.1f} ms",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for size in args.sizes:
        for line in format_figures(measure(size, args.repeats)):
            print(line, flush=True)
    print("targets: load + lint of 1,000 activities well under 1 s; lint alone < 1 s")


if __name__ == "__main__":
    main()
