"""Commands for course designers: ``check``, ``schema`` and ``graph``.

``check`` prints problems like a compiler (``design.yaml:12:9: error: ... (hint)``) or as JSON
for CI, and exits 1 when there are errors (or warnings, with ``--strict``); 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adaptive_lti.core.design import json_schema
from adaptive_lti.core.errors import MORE_PROBLEMS, AdaptiveLtiError, DesignError, Problem
from adaptive_lti.core.graph import FORMATS, render
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design_file


def register(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check",
        help="check a design file: every error and warning with its line",
        description="Load and lint a design. Exit 1 on errors (and on warnings with --strict).",
    )
    check.add_argument("design", help="the design file (YAML)")
    check.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (default text)"
    )
    check.add_argument("--strict", action="store_true", help="warnings fail the check too")
    check.set_defaults(handler=run_check)

    schema = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of design files (for editor completion)",
        description="Write the JSON Schema of design files, for editors and CI validators. "
        "Save it beside your designs (-o design.schema.json) and start each design with the line "
        "'# yaml-language-server: $schema=./design.schema.json': editors using the YAML "
        "language server then complete keys and flag mistakes as you type.",
    )
    schema.add_argument("-o", "--output", help="write to this file instead of standard output")
    schema.set_defaults(handler=run_schema)

    graph = subparsers.add_parser(
        "graph",
        help="draw a design's route (mermaid, dot or svg)",
        description="Draw the route with its conditions on the edges.",
    )
    graph.add_argument("design", help="the design file (YAML)")
    graph.add_argument(
        "--format", choices=FORMATS, default="mermaid", help="drawing format (default mermaid)"
    )
    graph.add_argument("-o", "--output", help="write to this file instead of standard output")
    graph.set_defaults(handler=run_graph)


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "severity": problem.severity,
        "code": problem.code,
        "message": problem.message,
        "hint": problem.hint,
    }


def run_check(args: argparse.Namespace) -> int:
    try:
        compiled = load_design_file(args.design)
        problems = lint(compiled)
        design_id: str | None = compiled.id
    except DesignError as error:
        problems, design_id = error.problems, None
    # The "… and N more problems" line (past the first 100) is not itself counted.
    listed = [problem for problem in problems if problem.code != MORE_PROBLEMS]
    errors = sum(1 for problem in listed if problem.severity == "error")
    warnings = len(listed) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.format == "json":
        report = {
            "file": args.design,
            "design": design_id,
            "ok": not failed,
            "errors": errors,
            "warnings": warnings,
            "problems": [_problem_json(problem) for problem in problems],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            print(problem)
        summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
        if len(listed) < len(problems):
            summary += " listed, more above"
        verdict = "FAILED" if failed else "ok"
        print(f"{args.design}: {verdict} ({summary})")
    return 1 if failed else 0


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise AdaptiveLtiError(
            f"cannot write '{output}': {error.strerror or error}",
            hint="check the folder exists and you may write there",
        ) from None
    print(f"wrote {output}", file=sys.stderr)


def run_schema(args: argparse.Namespace) -> int:
    schema = json_schema()
    _write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", args.output)
    return 0


def run_graph(args: argparse.Namespace) -> int:
    try:
        compiled = load_design_file(args.design)
    except DesignError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(
            f"{args.design}: cannot draw it; run 'adaptive-lti check {args.design}'",
            file=sys.stderr,
        )
        return 1
    _write(render(compiled.design, args.format), args.output)
    return 0
