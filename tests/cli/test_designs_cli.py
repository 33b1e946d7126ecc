"""``adaptive-lti design publish|list|show`` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_lti.cli import main
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from adaptive_lti.db import migrate
from tests.design_samples import INTRO_WITH_DEAD_END, INTRO_WITH_WARNING, WITH_PAGE_FILE, intro


@pytest.fixture
def database(new_database_url, backend: str, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    url: str = new_database_url(backend)
    migrate.upgrade(url)
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", url)
    return url


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_publish_list_and_show(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "intro.yaml", intro(1))
    assert main(["design", "publish", str(path), "--by", "Dana Designer"]) == 0
    assert "published sample-programming version 1" in capsys.readouterr().out

    assert main(["design", "publish", str(path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["published"] is True and again["created"] is False
    assert again["published_by"] == "Dana Designer"

    assert main(["design", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["design"], listed["version"], listed["versions"]) == ("sample-programming", 1, 1)

    assert main(["design", "show", "sample-programming", "--json", "--source"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["activities"] == {"welcome": "intake", "basics": "page", "project": "check"}
    assert shown["source"] == intro(1)
    assert shown["bindings"] == []

    assert main(["design", "list"]) == 0
    table = capsys.readouterr().out
    assert "sample-programming" in table and "0 errors, 0 warnings" in table


def test_changed_content_under_the_same_version_exits_1(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["design", "publish", str(write(tmp_path, "a.yaml", intro(1)))]) == 0
    changed = write(tmp_path, "b.yaml", intro(1, title="Renamed"))
    assert main(["design", "publish", str(changed)]) == 1
    assert "already published with other content; raise `version:`" in capsys.readouterr().err


def test_lint_errors_are_printed_with_their_lines_and_nothing_is_published(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.yaml", INTRO_WITH_DEAD_END)
    assert main(["design", "publish", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["published"] is False
    # Exactly what the linter says, with the file's line and column.
    [expected] = lint(load_design(INTRO_WITH_DEAD_END, str(path)))
    assert expected.line > 0 and expected.severity == "error"
    assert answer["problems"] == [str(expected)]
    assert "was not published" in captured.err
    assert main(["design", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_warnings_are_shown_and_kept(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["design", "publish", str(write(tmp_path, "w.yaml", INTRO_WITH_WARNING))]) == 0
    out = capsys.readouterr().out
    assert "warning: attribute 'goal' is never used" in out
    assert "1 warning" in out


def test_page_files_beside_the_design_are_published_with_it(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "intro.md", "# Welcome\n")
    path = write(tmp_path, "course.yaml", WITH_PAGE_FILE)
    assert main(["design", "publish", str(path)]) == 0
    (tmp_path / "intro.md").write_text("# Changed\n", encoding="utf-8")
    assert main(["design", "publish", str(path)]) == 1
    assert "already published with other content" in capsys.readouterr().err


def test_unknown_design_and_missing_file_say_what_to_do(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["design", "show", "nope"]) == 1
    assert "design publish" in capsys.readouterr().err
    assert main(["design", "publish", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_database_without_tables_says_to_upgrade(
    new_database_url, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", new_database_url("sqlite"))
    assert main(["design", "list"]) == 1
    assert "adaptive-lti db upgrade" in capsys.readouterr().err
