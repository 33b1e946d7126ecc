"""Small design texts shared by the loader, linter, graph and CLI tests."""

from __future__ import annotations

from textwrap import dedent

# A complete, lint-clean design in the shape of the reference course. Line numbers matter: tests
# point at them.
VALID = dedent(
    """\
    design: intro
    title: Introduction to Programming
    attributes:
      prior_programming:
        type: choice
        values: [none, some, experienced]
        sources: [custom, intake]
    skills:
      loops: {}
    activities:
      welcome: {kind: intake, title: Welcome, ask: [prior_programming]}
      diagnostic:
        kind: check
        title: Diagnostic
        questions:
          - {id: q1, prompt: "What is 1 + 1?", choices: ["1", "2"], answer: "2", skill: loops}
      loops-lesson: {kind: page, title: Loops, body: "# Loops"}
      loops-check:
        kind: check
        title: Loops check
        questions:
          - {id: q1, prompt: "How many times?", choices: ["1", "3"], answer: "3", skill: loops}
      loops-again: {kind: page, title: Loops again, body: "More examples"}
      project:
        kind: check
        title: Project
        pass_mark: 0.6
        questions:
          - {id: q1, prompt: "Does it end?", choices: ["yes", "no"], answer: "yes", skill: loops}
    route:
      - welcome
      - diagnostic
      - branch:
          - name: foundations
            when: prior_programming == "none" or diagnostic.score < 0.5
            then:
              - loops-lesson
              - remediate: {check: loops-check, lesson: loops-again, below: 0.7, max: 2}
          - name: standard
            otherwise: true
            then: []
      - project
    completion:
      move_on: completed-and-passed
      passed_when: project.score >= 0.6
    grade: project.score
    """
)


def replace_line(text: str, line: int, new: str) -> str:
    """``text`` with its 1-based ``line`` replaced by ``new`` (which may hold several lines)."""
    lines = text.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


def line_of(text: str, fragment: str) -> int:
    """The 1-based number of the first line holding ``fragment``."""
    for number, line in enumerate(text.split("\n"), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} is not in the text")
