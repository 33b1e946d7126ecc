"""axe-core in the browser tests: a page (or an embedded frame) with no serious or moderate
accessibility violation.

axe-core comes bundled in ``axe-playwright-python`` (no CDN, no download at test time). It is
injected through the DevTools protocol, so the tool's Content-Security-Policy does not block it.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Frame, Page

BLOCKING_IMPACTS = frozenset({"critical", "serious", "moderate"})
_AXE = Axe()


def accessibility_violations(target: Page | Frame) -> list[dict[str, Any]]:
    """axe's violations of impact moderate or worse on ``target`` (a page or an iframe's frame)."""
    results = _AXE.run(target)  # type: ignore[arg-type]  # Frame has the evaluate() axe uses
    violations: list[dict[str, Any]] = results.response.get("violations", [])
    return [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [node.get("target") for node in violation.get("nodes", [])][:5]
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}")
    return "\n".join(lines)


def assert_accessible(target: Page | Frame) -> None:
    """Fail with axe's own words when ``target`` has a serious or moderate violation."""
    violations = accessibility_violations(target)
    assert not violations, f"axe-core found on {target.url}:\n" + describe_violations(violations)
