"""Generate a large, valid learning design for benchmarks and tests.

``generate_design(1000)`` writes a design of 1,000 activities shaped like the reference course,
repeated: modules of a lesson, a check with questions on the module's skill and a remedial
lesson; modules grouped in units whose route branches on background and diagnostic scores, with
remediation loops, an elective choice per unit, a split and a spaced review. Every construct of
the language appears, so loading and linting it exercises every code path at scale.
"""

from __future__ import annotations

ACTIVITIES_PER_MODULE = 3  # lesson, check, remedial lesson
MODULES_PER_UNIT = 6


def _check(check_id: str, title: str, skill: str, questions: int) -> list[str]:
    lines = [
        f"  {check_id}:",
        "    kind: check",
        f"    title: {title}",
        "    pass_mark: 0.7",
        "    questions:",
    ]
    for number in range(1, questions + 1):
        lines += [
            f"      - id: q{number}",
            f'        prompt: "What does line {number} of this program print?"',
            '        choices: ["1", "2", "3", "an error"]',
            '        answer: "2"',
            f"        skill: {skill}",
        ]
    return lines


def _modules(unit: int, module_steps: list[list[str]], modules: range) -> list[str]:
    """Each module's lesson, then its check inside a remediation loop."""
    lines: list[str] = []
    for module in modules:
        lines.append(f"          - u{unit}-m{module}-lesson")
        lines += module_steps[module]
    return lines


def generate_design(activity_count: int = 1000, design_id: str = "generated") -> str:
    """YAML text of a valid design with about ``activity_count`` activities."""
    unit_size = MODULES_PER_UNIT * ACTIVITIES_PER_MODULE + 3  # + diagnostic, 2 electives
    units = max(1, round((activity_count - 2) / unit_size))
    lines = [
        f"design: {design_id}",
        f"title: Generated design of {activity_count} activities",
        "version: 1",
        "attributes:",
        "  prior_programming:",
        "    type: choice",
        "    values: [none, some, experienced]",
        "    sources: [custom, intake]",
        "  goal:",
        "    type: choice",
        "    values: [academic, vocational, interest]",
        "  age:",
        "    type: number",
        "    minimum: 16",
        "    maximum: 99",
        "    sources: [imported]",
        "    default: 30",
        "skills:",
    ]
    for unit in range(units):
        for module in range(MODULES_PER_UNIT):
            lines.append(f"  skill-{unit}-{module}: {{title: Skill {unit}.{module}}}")
    lines += [
        "activities:",
        "  welcome:",
        "    kind: intake",
        "    title: Welcome",
        "    ask: [prior_programming, goal]",
    ]
    route = ["route:", "  - welcome"]
    for unit in range(units):
        diagnostic = f"diagnostic-{unit}"
        lines += _check(diagnostic, f"Diagnostic {unit}", f"skill-{unit}-0", 2)
        module_steps: list[list[str]] = []
        for module in range(MODULES_PER_UNIT):
            stem = f"u{unit}-m{module}"
            skill = f"skill-{unit}-{module}"
            lines += [
                f"  {stem}-lesson:",
                "    kind: page",
                f"    title: Lesson {unit}.{module}",
                "    minutes: 20",
                f'    body: "# Lesson {unit}.{module}\\n\\nRead the example, then run it yourself."',
            ]
            lines += _check(f"{stem}-check", f"Check {unit}.{module}", skill, 2)
            lines += [
                f"  {stem}-remedial:",
                "    kind: page",
                f"    title: Another look at {unit}.{module}",
                f'    body: "Worked examples for skill {unit}.{module}."',
            ]
            module_steps.append(
                [
                    "          - remediate:",
                    f"              check: {stem}-check",
                    f"              lesson: {stem}-remedial",
                    "              below: 0.7",
                    "              max: 2",
                    "              flag: needs-help",
                ]
            )
        electives = [f"u{unit}-elective-a", f"u{unit}-elective-b"]
        for elective in electives:
            lines += [
                f"  {elective}:",
                "    kind: link",
                f"    title: Elective {elective}",
                "    url: https://moodle.example.org/mod/page/view.php?id=1",
            ]
        half = MODULES_PER_UNIT // 2
        route += [
            f"  - {diagnostic}",
            "  - branch:",
            "      - name: fast track",
            f'        when: prior_programming == "experienced" and {diagnostic}.score >= 0.8',
            "        then:",
            f"          - {electives[0]}",
            "      - name: foundations",
            f'        when: prior_programming == "none" or {diagnostic}.score < 0.5',
            "        then:",
            *_modules(unit, module_steps, range(MODULES_PER_UNIT)),
            "      - name: standard",
            "        otherwise: true",
            "        then:",
            *_modules(unit, module_steps, range(half, MODULES_PER_UNIT)),
            "  - choose:",
            f"      id: elective-{unit}",
            "      prompt: Choose an elective",
            "      pick: 1",
            f"      from: [{', '.join(electives)}]",
        ]
    lines += [
        "  project:",
        "    kind: check",
        "    title: Project",
        "    pass_mark: 0.6",
        "    questions:",
        "      - id: q1",
        "        prompt: Does the program terminate?",
        "        choices: [yes it does, no it does not]",
        "        answer: yes it does",
    ]
    last_check = f"u{units - 1}-m{MODULES_PER_UNIT - 1}-check"
    route += [
        "  - split:",
        "      id: pilot",
        "      variants:",
        "        control: {weight: 1}",
        "        hints: {weight: 1, then: [u0-m0-remedial]}",
        "  - review:",
        "      activity: u0-m0-check",
        f"      of: {last_check}",
        "      after: 7d",
        "  - project",
    ]
    lines += route
    lines += [
        "completion:",
        "  move_on: completed-and-passed",
        "  passed_when: project.score >= 0.6",
        "grade: project.score",
    ]
    return "\n".join(lines) + "\n"
