"""``adaptive-lti design publish|list|show|export|import`` against a real database (SQLite and
PostgreSQL), with two platforms registered: designs are one platform's (``--platform ID``)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from adaptive_lti.cli import main
from adaptive_lti.core.catalogue import content_hash
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from adaptive_lti.db import migrate, registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from tests.design_samples import (
    INTRO_WITH_DEAD_END,
    INTRO_WITH_WARNING,
    NOW,
    WITH_PAGE_FILE,
    intro,
)

# The registrations the fixture makes: the first platform, and an unrelated second one.
FIRST, SECOND = "1", "2"


@pytest.fixture
def database(new_database_url, backend: str, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    url: str = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            for number, issuer in (
                (FIRST, "https://moodle.example.edu"),
                (SECOND, "https://other.example.org"),
            ):
                made = registrations_repo.add_registration(
                    session,
                    issuer=issuer,
                    client_id="tool",
                    name=f"Platform {number}",
                    auth_login_url=issuer + "/auth",
                    auth_token_url=issuer + "/token",
                    jwks_url=issuer + "/certs",
                    deployment_ids=["1"],
                    now=NOW,
                )
                assert str(made.id) == number
    finally:
        engine.dispose()
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
    assert main(["design", "publish", "--platform", FIRST, str(path), "--by", "Dana Designer"]) == 0
    assert "published sample-programming version 1" in capsys.readouterr().out

    assert main(["design", "publish", "--platform", FIRST, str(path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["published"] is True and again["created"] is False
    assert again["published_by"] == "Dana Designer"

    assert main(["design", "list", "--platform", FIRST, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["design"], listed["version"], listed["versions"]) == ("sample-programming", 1, 1)

    assert (
        main(["design", "show", "--platform", FIRST, "sample-programming", "--json", "--source"])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["activities"] == {"welcome": "intake", "basics": "page", "project": "check"}
    assert shown["source"] == intro(1)
    assert shown["bindings"] == []

    assert main(["design", "list", "--platform", FIRST]) == 0
    table = capsys.readouterr().out
    assert "sample-programming" in table and "0 errors, 0 warnings" in table


def test_changed_content_under_the_same_version_exits_1(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["design", "publish", "--platform", FIRST, str(write(tmp_path, "a.yaml", intro(1)))])
        == 0
    )
    changed = write(tmp_path, "b.yaml", intro(1, title="Renamed"))
    assert main(["design", "publish", "--platform", FIRST, str(changed)]) == 1
    assert "already published with other content; raise `version:`" in capsys.readouterr().err


def test_lint_errors_are_printed_with_their_lines_and_nothing_is_published(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.yaml", INTRO_WITH_DEAD_END)
    assert main(["design", "publish", "--platform", FIRST, str(path), "--json"]) == 1
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["published"] is False
    # Exactly what the linter says, with the file's line and column.
    [expected] = lint(load_design(INTRO_WITH_DEAD_END, str(path)))
    assert expected.line > 0 and expected.severity == "error"
    assert answer["problems"] == [str(expected)]
    assert "was not published" in captured.err
    assert main(["design", "list", "--platform", FIRST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_warnings_are_shown_and_kept(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "design",
                "publish",
                "--platform",
                FIRST,
                str(write(tmp_path, "w.yaml", INTRO_WITH_WARNING)),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "warning: attribute 'goal' is never used" in out
    assert "1 warning" in out


def test_page_files_beside_the_design_are_published_with_it(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "intro.md", "# Welcome\n")
    path = write(tmp_path, "course.yaml", WITH_PAGE_FILE)
    assert main(["design", "publish", "--platform", FIRST, str(path)]) == 0
    (tmp_path / "intro.md").write_text("# Changed\n", encoding="utf-8")
    assert main(["design", "publish", "--platform", FIRST, str(path)]) == 1
    assert "already published with other content" in capsys.readouterr().err


def test_unknown_design_and_missing_file_say_what_to_do(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["design", "show", "--platform", FIRST, "nope"]) == 1
    assert "design publish" in capsys.readouterr().err
    assert main(["design", "publish", "--platform", FIRST, str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_database_without_tables_says_to_upgrade(
    new_database_url, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", new_database_url("sqlite"))
    assert main(["design", "list", "--platform", FIRST]) == 1
    assert "adaptive-lti db upgrade" in capsys.readouterr().err


# --- tenants: --platform, export and import -----------------------------------------------


def test_design_commands_name_the_platform_and_list_the_registered_ones(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "intro.yaml", intro(1))
    assert main(["design", "publish", str(path)]) == 1
    err = capsys.readouterr().err
    assert "--platform ID" in err
    assert "1: Platform 1 (https://moodle.example.edu)" in err and "2: Platform 2" in err
    assert main(["design", "list", "--platform", "99"]) == 1
    assert "no platform registration with id 99" in capsys.readouterr().err


def test_a_design_published_for_one_platform_is_not_the_others(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["design", "publish", str(write(tmp_path, "a.yaml", intro(1))), "--platform", FIRST])
        == 0
    )
    capsys.readouterr()
    assert main(["design", "list", "--platform", SECOND, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["design", "show", "sample-programming", "--platform", SECOND]) == 1
    assert (
        "No design 'sample-programming' is published for this platform" in capsys.readouterr().err
    )
    # The second platform may publish its own design of that id, other content, any version.
    other = write(tmp_path, "b.yaml", intro(1, title="Theirs"))
    assert main(["design", "publish", str(other), "--platform", SECOND]) == 0
    capsys.readouterr()
    assert main(["design", "show", "sample-programming", "--platform", FIRST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Introduction to Programming"


def test_export_then_import_into_another_platform_keeps_every_version_and_page(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "intro.md", "# Welcome\n\nRead this first.\n")
    first = write(tmp_path, "course.yaml", WITH_PAGE_FILE)
    second = write(tmp_path, "course2.yaml", WITH_PAGE_FILE.replace("version: 1", "version: 2"))
    for path in (first, second):
        assert main(["design", "publish", str(path), "--platform", FIRST]) == 0
    package = tmp_path / "with-files.zip"
    assert main(["design", "export", "with-files", "--platform", FIRST, "-o", str(package)]) == 0
    assert "exported with-files (2 versions: 1, 2)" in capsys.readouterr().out

    assert main(["design", "import", str(package), "--platform", SECOND, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == [1, 2]
    for platform in (FIRST, SECOND):
        assert (
            main(["design", "show", "with-files", "--platform", platform, "--json", "--source"])
            == 0
        )
        shown = json.loads(capsys.readouterr().out)
        assert shown["versions"] == [2, 1]
        assert shown["source"] == second.read_text()
        assert shown["content_hash"] == content_hash(
            second.read_text(), {"intro": "# Welcome\n\nRead this first.\n"}
        )

    # Importing it again is refused: the id is taken there. Under a new id it goes in.
    assert main(["design", "import", str(package), "--platform", SECOND]) == 1
    assert "already has a design 'with-files'" in capsys.readouterr().err
    assert main(["design", "import", str(package), "--platform", SECOND, "--as", "my-copy"]) == 0
    assert "imported my-copy into platform 2 (2 versions: 1, 2)" in capsys.readouterr().out
    assert main(["design", "show", "my-copy", "--platform", SECOND, "--json", "--source"]) == 0
    assert "design: my-copy" in json.loads(capsys.readouterr().out)["source"]


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x05\x06" + b"\x00" * 18])
def test_a_file_that_is_not_a_package_is_refused_clearly(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    package = tmp_path / "bad.zip"
    package.write_bytes(content)
    assert main(["design", "import", str(package), "--platform", FIRST]) == 1
    err = capsys.readouterr().err
    assert "is not a design package" in err and "design export" in err
    assert main(["design", "list", "--platform", FIRST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_import_that_fails_half_way_publishes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for version in (1, 2):
        path = write(tmp_path, f"v{version}.yaml", intro(version))
        assert main(["design", "publish", str(path), "--platform", FIRST]) == 0
    package = tmp_path / "p.zip"
    assert (
        main(["design", "export", "sample-programming", "--platform", FIRST, "-o", str(package)])
        == 0
    )
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "v2/design.yaml":
                data = INTRO_WITH_DEAD_END.replace("version: 1", "version: 2").encode()
            target.writestr(item, data)
    capsys.readouterr()
    assert main(["design", "import", str(broken), "--platform", SECOND]) == 1
    assert "was not imported" in capsys.readouterr().err
    assert main(["design", "list", "--platform", SECOND, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
