"""The simulator and ``adaptive-lti simulate``: personas files, reports, determinism, formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from adaptive_lti.cli import main
from adaptive_lti.core import simulate
from adaptive_lti.core.loader import load_design
from adaptive_lti.core.simulate import PersonaError
from tests.core.routing import EXAMPLES, T0, example

DESIGN = example("intro-programming")
DESIGN_PATH = str(EXAMPLES / "intro-programming" / "design.yaml")
PERSONAS_PATH = str(EXAMPLES / "intro-programming" / "personas.yaml")
PERSONAS = simulate.load_personas(DESIGN, Path(PERSONAS_PATH).read_text(encoding="utf-8"))


def test_personas_yaml_errors_say_where() -> None:
    with pytest.raises(PersonaError, match=r"p.yaml:3:1: not valid YAML \(expected .,. or .\]."):
        simulate.parse_personas("personas:\n  ana: [unclosed\n", "p.yaml")
    with pytest.raises(PersonaError, match="a personas file is a mapping"):
        simulate.parse_personas("- ana\n", "p.yaml")
    with pytest.raises(PersonaError, match=r"personas\.ana\.weight: Input should be greater"):
        simulate.parse_personas("personas:\n  ana: {weight: -1}\n", "p.yaml")
    with pytest.raises(PersonaError, match=r"personas\.ana\.colour: Extra inputs"):
        simulate.parse_personas("personas:\n  ana: {colour: red}\n", "p.yaml")


def test_personas_must_use_the_designs_names_and_values() -> None:
    text = """\
personas:
  x:
    attributes: {prior_programming: guru, shoe_size: 9}
    correct: {recursion: 0.5}
    scores: {welcome: [1.0]}
    choices: {elective: {elective-art: 1}, other: {}}
    pauses: [{after: nowhere, days: 2}]
"""
    problems = simulate.check_personas(DESIGN, simulate.parse_personas(text))
    assert problems == [
        "personas.x.attributes.prior_programming: 'guru' is not a value of 'prior_programming'",
        "personas.x.attributes: the design has no attribute 'shoe_size'",
        "personas.x.correct: the design has no skill 'recursion'",
        "personas.x.scores: 'welcome' is not a check of the design",
        "personas.x.pauses: the design has no activity 'nowhere'",
        "personas.x.choices.elective: 'elective-art' is not one of elective-games, "
        "elective-data, elective-web",
        "personas.x.choices: the design has no choice 'other'",
    ]
    with pytest.raises(PersonaError, match="use the names and values the design declares"):
        simulate.load_personas(DESIGN, text)


def test_a_simulation_is_deterministic_and_its_figures_add_up() -> None:
    calls: list[tuple[int, int]] = []
    report = simulate.simulate(
        DESIGN, PERSONAS, learners=300, seed=3, start=T0, progress=lambda *a: calls.append(a)
    )
    again = simulate.simulate(DESIGN, PERSONAS, learners=300, seed=3, start=T0)
    assert report == again
    assert calls[-1] == (300, 300)
    other = simulate.simulate(DESIGN, PERSONAS, learners=300, seed=4, start=T0)
    assert other != report
    (routes,) = report.routes
    assert routes.name == "route[2]"
    assert {share.name for share in routes.items} == {"fast track", "foundations", "standard"}
    assert sum(share.count for share in routes.items) == 300
    reach = {item.activity: item.share for item in report.reach}
    assert reach["welcome"] == reach["diagnostic"] == reach["project"] == 1.0
    assert reach["variables-lesson"] == next(
        s.share for s in routes.items if s.name == "foundations"
    )
    (elective,) = report.choices
    assert sum(share.count for share in elective.items) == 300  # exactly one pick each
    assert report.completion_rate == 1.0 and report.stuck_rate == 0.0
    assert report.remediation_rounds_per_learner == pytest.approx(
        sum(step.count for step in report.remediation_by_step) / 300
    )
    assert report.flags[0].name == "needs-help"
    assert report.minutes_mean is not None and report.minutes_mean > 100
    assert report.days_mean is not None and report.days_mean > 0
    ana = next(p for p in report.personas if p.persona == "ana")
    assert [(r.name, r.share) for r in ana.routes] == [("foundations", 1.0)]


def test_a_route_that_never_ends_for_a_persona_is_reported_as_stuck() -> None:
    design_text = Path(DESIGN_PATH).read_text(encoding="utf-8").replace("    max_attempts: 3\n", "")
    design = load_design(design_text, "design.yaml")
    personas = simulate.load_personas(
        design, "personas:\n  hopeless: {default_correct: 0.0, scores: {project: [0.0]}}\n"
    )
    report = simulate.simulate(design, personas, learners=3, seed=1, start=T0)
    assert report.stuck_rate == 1.0 and report.completion_rate == 0.0


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", DESIGN_PATH, "--personas", PERSONAS_PATH, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "-n", "200", "--seed", "1")
    assert code == 0 and err == ""  # no progress bar: stderr is not a terminal
    assert out.startswith("Simulated 200 learners through intro-programming version 1 (seed 1)")
    for heading in ("Routes (share", "Choices (share", "Activities (share", "Remediation:"):
        assert heading in out
    assert "flagged 'needs-help'" in out
    assert "Completed 100.0%, passed" in out


def test_cli_json_and_csv_agree_and_processes_do_not_change_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "-n", "120", "--format", "json")
    assert code == 0
    report = json.loads(out)
    _, parallel, _ = run_cli(capsys, "-n", "120", "--format", "json", "--jobs", "2")
    assert json.loads(parallel) == report
    _, text, _ = run_cli(capsys, "-n", "120", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0].keys() == {"section", "name", "item", "count", "share", "value"}
    completion = next(r for r in rows if r["name"] == "completion_rate")
    assert float(completion["value"]) == report["completion_rate"]
    routes = {r["item"]: int(r["count"]) for r in rows if r["section"] == "route"}
    assert routes == {item["name"]: item["count"] for item in report["routes"][0]["items"]}


def test_cli_walk_explains_each_persona(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--walk")
    assert code == 0
    assert "== eve: Says experienced" in out
    assert "You are on the foundations route because your diagnostic score was 0.33" in out
    assert "-> loops-support (support)" in out
    assert "= finished, passed, grade 0.6; flags: needs-help" in out


def test_cli_errors_are_plain_and_exit_non_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["simulate", DESIGN_PATH, "--personas", str(tmp_path / "missing.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and "cannot read the personas file" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas:\n  x: {attributes: {goal: fun}}\n", encoding="utf-8")
    code = main(["simulate", DESIGN_PATH, "--personas", str(bad)])
    err = capsys.readouterr().err
    assert code == 1 and "'fun' is not a value of 'goal'" in err
    code = main(["simulate", str(tmp_path / "nope.yaml"), "--personas", PERSONAS_PATH])
    assert code == 1 and "cannot read" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "-n", "0")
    assert code == 2 and "-n must be at least 1" in err


def test_the_progress_bar_redraws_one_line() -> None:
    from adaptive_lti.cli.simulate import _progress_bar

    stream = io.StringIO()
    show = _progress_bar(stream)
    show(2500, 10000)
    show(10000, 10000)
    assert stream.getvalue() == (
        "\r[#######.......................] 2,500/10,000 learners"
        "\r[##############################] 10,000/10,000 learners"
    )
