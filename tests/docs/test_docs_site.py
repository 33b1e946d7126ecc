"""The documentation site builds with ``mkdocs build --strict``, and the build can fail.

The site is built once per test session into a temporary directory (never into the checkout).
The generated design-language reference must name every field of the JSON Schema, and a copy of
docs/ with a broken link or a broken anchor must make the strict build fail: the check that keeps
links true is shown to be able to fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adaptive_lti.core.design import json_schema

ROOT = Path(__file__).resolve().parents[2]


def build_site(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mkdocs build --strict`` as the test command would, with this interpreter's MkDocs."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site_dir),
        ],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        # Material prints a banner about MkDocs 2 on every build; it is not a warning of ours.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(ROOT / "mkdocs.yml", site_dir)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    yield site_dir


def schema_property_names(node: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema (top level and every definition)."""
    names: set[str] = set()
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            names.update(properties)
        for value in node.values():
            names |= schema_property_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= schema_property_names(item)
    return names


def test_the_site_builds_strictly_and_reads_offline(built_site: Path) -> None:
    assert (built_site / "index.html").is_file()
    for audience in ("administrators", "designers", "instructors", "operators", "contributors"):
        assert (built_site / audience / "index.html").is_file(), audience
    # No fonts, styles or scripts from another site (theme.font: false, no fetching plugins).
    external = re.compile(r"<(?:link|script)\b[^>]*\b(?:href|src)=\"(?:https?:)?//", re.IGNORECASE)
    pages = sorted(built_site.rglob("*.html"))
    assert len(pages) > 20
    fetching = [
        str(page.relative_to(built_site))
        for page in pages
        if external.search(page.read_text("utf-8"))
    ]
    assert fetching == []


def test_the_reference_names_every_field_and_definition_of_the_schema(built_site: Path) -> None:
    schema = json_schema()
    reference = (built_site / "designers" / "reference" / "index.html").read_text("utf-8")
    names = schema_property_names(schema)
    assert {"design", "route", "activities", "when", "otherwise", "pass_mark"} <= names
    missing = sorted(name for name in names if f"<code>{name}</code>" not in reference)
    assert missing == [], f"fields of the schema missing from the reference: {missing}"
    for definition in schema["$defs"]:
        assert f'id="{definition.lower()}"' in reference, definition


def copy_of_the_docs(destination: Path) -> Path:
    shutil.copytree(ROOT / "docs", destination / "docs")
    shutil.copy(ROOT / "mkdocs.yml", destination / "mkdocs.yml")
    return destination / "mkdocs.yml"


@pytest.mark.parametrize(
    ("broken_link", "named_in_the_warning"),
    [
        ("[gone](administrators/no-such-page.md)", "administrators/no-such-page.md"),
        ("[gone](administrators/settings.md#no-such-heading)", "no-such-heading"),
    ],
    ids=["missing-page", "missing-anchor"],
)
def test_a_broken_link_fails_the_strict_build(
    tmp_path: Path, broken_link: str, named_in_the_warning: str
) -> None:
    config = copy_of_the_docs(tmp_path)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text("utf-8") + f"\nSee {broken_link}.\n", "utf-8")

    result = build_site(config, tmp_path / "site")

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert named_in_the_warning in output
    assert "Aborted with 1 warnings in strict mode" in output
