"""``adaptive-lti check``, ``schema`` and ``graph``: exit codes and output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from adaptive_lti.cli import main
from tests.core.design_texts import VALID

WITH_WARNING = VALID.replace(
    "skills:\n", "  goal: {type: choice, values: [a, b]}\nskills:\n"
)  # 'goal' is never used
WITH_ERROR = VALID.replace(
    "      - name: standard\n        otherwise: true\n        then: []\n", ""
)


Write = Callable[[str | bytes], str]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write_design(text: str | bytes) -> str:
        path = tmp_path / "design.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, "utf-8")
        return str(path)

    return write_design


def test_check_a_clean_design(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(VALID)
    assert main(["check", path]) == 0
    assert capsys.readouterr().out == f"{path}: ok (0 errors, 0 warnings)\n"


def test_check_warnings_pass_unless_strict(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(WITH_WARNING)
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    assert f"{path}:8:3: warning: attribute 'goal' is never used" in out
    assert out.endswith(f"{path}: ok (0 errors, 1 warning)\n")
    assert main(["check", "--strict", path]) == 1
    assert capsys.readouterr().out.endswith(f"{path}: FAILED (0 errors, 1 warning)\n")


def test_check_errors_fail_with_compiler_style_lines(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(WITH_ERROR)
    assert main(["check", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        f"{path}:33:5: error: some learners match no case of this branch and have no route"
    )
    assert lines[-1] == f"{path}: FAILED (1 error, 0 warnings)"


def test_check_load_errors(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(VALID.replace("  - project\n", "  - projet\n"))
    assert main(["check", path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:42:5: error: unknown activity 'projet' (did you mean 'project'?)" in out


def test_check_json_for_ci(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(WITH_ERROR)
    assert main(["check", "--format", "json", path]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["design"] == "intro"
    assert (report["errors"], report["warnings"]) == (1, 0)
    [problem] = report["problems"]
    assert problem["code"] == "dead-end"
    assert (problem["line"], problem["column"], problem["severity"]) == (33, 5, "error")


def test_check_json_of_an_unloadable_design(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(b"design: \xff\n")
    assert main(["check", "--format", "json", path]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["design"] is None
    assert report["problems"][0]["code"] == "encoding"


def test_check_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["check", missing]) == 1
    out = capsys.readouterr().out
    assert f"{missing}: error: cannot read '{missing}': No such file or directory" in out


def test_schema_to_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    output = tmp_path / "design.schema.json"
    assert main(["schema", "-o", str(output)]) == 0
    assert json.loads(output.read_text("utf-8")) == schema


def test_the_schema_accepts_valid_designs_and_rejects_wrong_ones() -> None:
    from adaptive_lti.core.design import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    validator.check_schema(json_schema())
    assert list(validator.iter_errors(yaml.safe_load(VALID))) == []
    wrong = yaml.safe_load(VALID.replace("pass_mark: 0.6", "pass_mark: high"))
    assert list(validator.iter_errors(wrong))
    unknown_key = yaml.safe_load(VALID.replace("grade: project.score", "grde: project.score"))
    assert list(validator.iter_errors(unknown_key))


def test_the_schema_accepts_the_shipped_examples() -> None:
    from adaptive_lti.core.design import json_schema

    examples = sorted(Path(__file__).resolve().parents[2].glob("examples/*/design*.yaml"))
    validator = jsonschema.Draft202012Validator(json_schema())
    for example in examples:
        errors = [
            error.message
            for error in validator.iter_errors(yaml.safe_load(example.read_text("utf-8")))
        ]
        assert errors == [], example


def test_schema_to_an_unwritable_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "-o", str(tmp_path / "no" / "such" / "dir.json")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot write")


@pytest.mark.parametrize(
    ("output_format", "start"),
    [("mermaid", '---\ntitle: "Introduction'), ("dot", "digraph design {"), ("svg", "<svg ")],
)
def test_graph_formats(
    write: Write, capsys: pytest.CaptureFixture[str], output_format: str, start: str
) -> None:
    path = write(VALID)
    assert main(["graph", path, "--format", output_format]) == 0
    assert capsys.readouterr().out.startswith(start)


def test_graph_to_a_file(write: Write, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(VALID)
    output = tmp_path / "route.svg"
    assert main(["graph", path, "--format", "svg", "-o", str(output)]) == 0
    assert output.read_text("utf-8").startswith("<svg ")
    assert capsys.readouterr().err == f"wrote {output}\n"


def test_graph_of_a_broken_design(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("design: [\n")
    assert main(["graph", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:1: error: this is not valid YAML" in err
    assert f"run 'adaptive-lti check {path}'" in err


def test_graph_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_graph_rejects_an_unknown_format(write: Write) -> None:
    path = write(VALID)
    with pytest.raises(SystemExit) as caught:
        main(["graph", path, "--format", "png"])
    assert caught.value.code == 2
