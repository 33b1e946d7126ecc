"""Every relative link in the README (and in the examples' READMEs) points to a file that exists.

The README is what a newcomer reads first and what PyPI shows; its links go into docs/, which is
checked by the strict site build, but the README itself is outside the site, so it is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# [text](target) with the target up to the first space or closing parenthesis; images too.
MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
READMES = [ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md"))]


def relative_links(markdown: str) -> list[str]:
    """Link targets that name a file of the repository (not a web address nor an anchor alone)."""
    without_code = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    targets = MARKDOWN_LINK.findall(without_code)
    return [
        target
        for target in targets
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def test_the_link_pattern_finds_relative_links_and_skips_the_rest() -> None:
    text = (
        "[a](docs/index.md) [b](https://example.org) [c](#layout) ![d](docs/x.png)\n"
        "[e](docs/operators/deploy.md#kubernetes) [f](mailto:x@example.org)\n"
        "```\n[g](inside/a/code/block.md)\n```\n"
    )
    assert relative_links(text) == [
        "docs/index.md",
        "docs/x.png",
        "docs/operators/deploy.md#kubernetes",
    ]


@pytest.mark.parametrize("readme", READMES, ids=[str(p.relative_to(ROOT)) for p in READMES])
def test_every_relative_link_points_to_a_file(readme: Path) -> None:
    links = relative_links(readme.read_text("utf-8"))
    missing = [
        link for link in links if not (readme.parent / link.split("#", 1)[0]).resolve().exists()
    ]
    assert missing == [], f"{readme.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_readme_leads_into_every_audience_guide() -> None:
    links = {
        link.split("#", 1)[0] for link in relative_links((ROOT / "README.md").read_text("utf-8"))
    }
    for guide in ("administrators", "designers", "instructors", "operators", "contributors"):
        assert f"docs/{guide}/index.md" in links, guide
