"""The loader: every class of bad input gives a DesignError with the exact line and column."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench.design_generator import generate_design

from adaptive_lti.core.design import Page
from adaptive_lti.core.errors import DesignError, Problem
from adaptive_lti.core.loader import (
    MAX_DEPTH,
    MAX_DESIGN_BYTES,
    load_design,
    load_design_file,
    read_design,
)
from tests.core.design_texts import VALID, line_of, replace_line


def problems_of(text: str | bytes) -> list[Problem]:
    compiled, problems = read_design(text, "course.yaml")
    assert compiled is None, "the design loaded, but problems were expected"
    assert problems
    return problems


def only_problem(text: str | bytes) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, "\n".join(str(problem) for problem in problems)
    return problems[0]


def where(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.column


# --- a valid design -------------------------------------------------------------------------------


def test_a_valid_design_loads_with_its_source_map() -> None:
    compiled = load_design(VALID, "course.yaml")
    assert compiled.id == "intro"
    assert list(compiled.design.activities)[:2] == ["welcome", "diagnostic"]
    assert compiled.source is not None
    assert compiled.source.file == "course.yaml"
    when = ("route", 2, "branch", 0, "when")
    position = compiled.source.locate(when)
    assert position is not None and (position.line, position.column) == (35, 15)
    key = compiled.source.locate(("activities", "project"), key=True)
    assert key is not None and (key.line, key.column) == (24, 3)


def test_problem_strings_read_like_a_compiler() -> None:
    text = VALID.replace("  - project\n", "  - projet\n")
    assert str(only_problem(text)) == (
        "course.yaml:42:5: error: unknown activity 'projet' (did you mean 'project'?)"
    )


def test_design_error_lists_every_problem() -> None:
    text = VALID.replace("  - project\n", "  - projet\n").replace(
        "      - loops-lesson\n", "      - loops-lesson\n          - loops-chek\n"
    )
    with pytest.raises(DesignError) as caught:
        load_design(text)
    assert [p.message for p in caught.value.problems] == [
        "unknown activity 'loops-chek'",
        "unknown activity 'projet'",
    ]
    assert caught.value.problems[0].hint == "did you mean 'loops-check'?"
    assert "(and 1 more)" in str(caught.value)


def test_unknown_activities_are_reported_with_validation_errors() -> None:
    text = (
        VALID.replace("  - project\n", "  - projet\n")
        .replace("lesson: loops-again, below", "lesson: loops-agian, below")
        .replace("    pass_mark: 0.6", "    pass_mark: high")
    )
    problems = problems_of(text)
    assert [(p.line, p.message) for p in problems] == [
        (27, "'pass_mark' should be a number, not the text 'high'"),
        (38, "unknown activity 'loops-agian'"),
        (42, "unknown activity 'projet'"),
    ]
    assert problems[1].hint == "did you mean 'loops-again'?"
    assert problems[1].column == 53


# --- model errors in plain words ------------------------------------------------------------------


def test_unknown_key_suggests_the_nearest_allowed_key_at_the_key() -> None:
    text = VALID.replace("    pass_mark: 0.6", "    pass_mrk: 0.6")
    problem = only_problem(text)
    assert problem.message == "unknown key 'pass_mrk' in activity 'project'"
    assert problem.hint == "did you mean 'pass_mark'?"
    assert where(problem) == (27, 5)
    assert problem.code == "unknown-key"


def test_unknown_key_without_a_near_one_lists_the_allowed_keys() -> None:
    text = VALID.replace("grade: project.score", "grade: project.score\ncolour: blue")
    problem = only_problem(text)
    assert problem.message == "unknown key 'colour' in the design"
    assert problem.hint.startswith("allowed here: design, title, version")
    assert where(problem) == (47, 1)


def test_wrong_type_in_plain_words() -> None:
    text = VALID.replace("    pass_mark: 0.6", "    pass_mark: high")
    problem = only_problem(text)
    assert problem.message == "'pass_mark' should be a number, not the text 'high'"
    assert where(problem) == (27, 16)


def test_yes_and_no_in_a_choice_are_explained() -> None:
    text = VALID.replace("values: [none, some, experienced]", "values: [none, yes, no]")
    problems = problems_of(text)
    assert [p.message for p in problems] == [
        "item 2 of 'values' should be text, not true",
        "item 3 of 'values' should be text, not false",
    ]
    assert [where(p) for p in problems] == [(6, 20), (6, 25)]
    assert "put it in quotes" in problems[0].hint


def test_missing_key_points_at_the_mapping_that_lacks_it() -> None:
    text = VALID.replace("    title: Project\n", "")
    problem = only_problem(text)
    assert problem.message == "'title' is missing in activity 'project'"
    assert where(problem) == (24, 3)
    assert problem.hint == "add 'title: Loops'"


def test_unknown_activity_kind_suggests_the_nearest() -> None:
    text = VALID.replace("kind: page, title: Loops,", "kind: pgae, title: Loops,")
    problem = only_problem(text)
    assert problem.message == "unknown kind 'pgae' in activity 'loops-lesson'"
    assert problem.hint == "did you mean 'page'?"
    assert where(problem) == (17, 24)


def test_model_validator_messages_are_kept() -> None:
    text = VALID.replace('body: "# Loops"', 'body: "# Loops", file: loops.md')
    problem = only_problem(text)
    assert problem.message.startswith("a page needs exactly one of 'body'")
    assert where(problem) == (17, 17)


def test_a_bad_item_is_not_also_reported_as_a_missing_item() -> None:
    text = VALID.replace('choices: ["1", "2"], answer: "2"', 'choices: ["2"], answer: "2"', 1)
    problem = only_problem(text)
    assert problem.message == "'choices' needs at least 2 items"
    assert where(problem) == (16, 53)


def test_invalid_ids_and_durations() -> None:
    text = VALID.replace("  loops-again: {", "  Loops Again: {").replace(
        "loops-again, below", "Loops Again, below"
    )
    problems = problems_of(text)
    assert [p.code for p in problems] == ["invalid-id", "invalid-id"]
    assert [where(p) for p in problems] == [(23, 3), (38, 53)]
    assert "lower-case letters" in problems[0].hint


# --- route steps: one construct at a time, no union noise ----------------------------------------


def test_a_malformed_id_in_a_step_is_one_problem() -> None:
    text = VALID.replace(
        "  - project\n", "  - choose: {id: el, from: [Bad Id, project], pick: 1}\n"
    )
    problem = only_problem(text)
    assert problem.message == "item 1 of 'from' is 'Bad Id', which is not a valid id"
    assert where(problem) == (42, 29)


def test_a_missing_key_in_a_step_has_an_example() -> None:
    text = VALID.replace("below: 0.7, max: 2}", "below: 0.7}")
    problem = only_problem(text)
    assert (problem.message, problem.hint) == ("'max' is missing in 'remediate'", "add 'max: 2'")


def test_a_misspelt_step_key_is_one_clear_problem() -> None:
    text = VALID.replace("  - branch:", "  - brnach:")
    problem = only_problem(text)
    assert problem.message.endswith(
        "a step is an activity id or one of branch, remediate, choose, split, review"
    )
    assert problem.hint == "did you mean 'branch' instead of 'brnach'?"
    assert where(problem) == (33, 5)


def test_an_error_inside_a_step_is_reported_against_that_construct_only() -> None:
    text = VALID.replace("below: 0.7, max: 2}", "below: 0.7, max: many}")
    problem = only_problem(text)
    assert problem.message == "'max' should be a whole number, not the text 'many'"
    assert where(problem) == (38, 83)


def test_unknown_key_inside_a_nested_step_suggests_the_key() -> None:
    text = VALID.replace("lesson: loops-again, below", "lessen: loops-again, below")
    problems = problems_of(text)
    assert [p.message for p in problems] == [
        "'lesson' is missing in 'remediate'",
        "unknown key 'lessen' in 'remediate'",
    ]
    assert problems[1].hint == "did you mean 'lesson'?"
    assert [where(p) for p in problems] == [(38, 13), (38, 45)]


def test_two_constructs_in_one_step() -> None:
    text = replace_line(
        VALID, 42, "  - {review: {activity: project, of: welcome, after: 7d}, choose: {}}"
    )
    problem = only_problem(text)
    assert problem.message.startswith("route step 4 has both review and choose")
    assert where(problem) == (42, 5)


def test_a_step_that_is_a_number() -> None:
    text = replace_line(VALID, 42, "  - 42")
    problem = only_problem(text)
    assert problem.message.startswith("route step 4 is the number 42: a step is an activity id")


def test_then_must_be_a_list() -> None:
    text = VALID.replace("        then: []", "        then: project")
    problem = only_problem(text)
    assert problem.message == "'then' should be a list, not the text 'project'"
    assert where(problem) == (41, 15)


def test_case_needs_when_or_otherwise() -> None:
    text = VALID.replace("        otherwise: true\n", "")
    problem = only_problem(text)
    assert problem.message == "a case needs either 'when: <condition>' or 'otherwise: true'"
    assert where(problem) == (39, 9)


# --- conditions and references --------------------------------------------------------------------


def test_condition_errors_point_inside_a_plain_scalar() -> None:
    text = VALID.replace("diagnostic.score < 0.5", "diagnostic.scor < 0.5")
    problem = only_problem(text)
    assert problem.message == "unknown name 'diagnostic.scor'"
    assert problem.hint == "did you mean 'diagnostic.score'?"
    # The condition starts at column 15; the name is at column 32 of the condition.
    assert where(problem) == (35, 15 + 31)
    assert problem.code == "condition"


def test_condition_errors_point_inside_a_quoted_scalar() -> None:
    text = VALID.replace(
        """when: prior_programming == "none" or diagnostic.score < 0.5""",
        """when: 'prior_programming == "nnone" or diagnostic.score < 0.5'""",
    )
    problem = only_problem(text)
    assert problem.hint == 'did you mean "none"?'
    assert where(problem) == (35, 16)


def test_condition_errors_in_a_block_scalar_point_at_the_scalar() -> None:
    text = VALID.replace(
        """        when: prior_programming == "none" or diagnostic.score < 0.5""",
        """        when: >-\n          prior_programming == "none" or\n          diagnostic.scor < 0.5""",
    )
    problem = only_problem(text)
    assert problem.message == "unknown name 'diagnostic.scor'"
    assert where(problem) == (35, 15)


def test_unknown_skill_and_attribute_references() -> None:
    text = VALID.replace('answer: "3", skill: loops', 'answer: "3", skill: lops').replace(
        "ask: [prior_programming]", "ask: [prior_programing]"
    )
    problems = problems_of(text)
    assert [(p.message, p.hint) for p in problems] == [
        ("unknown attribute 'prior_programing'", "did you mean 'prior_programming'?"),
        ("unknown skill 'lops'", "did you mean 'loops'?"),
    ]
    assert [where(p) for p in problems] == [(11, 49), (22, 86)]


def test_grade_must_be_a_score() -> None:
    problem = only_problem(VALID.replace("grade: project.score", "grade: project.passed"))
    assert problem.message == "the grade 'project.passed' is not a score"
    assert where(problem) == (46, 8)


# --- YAML-level problems ---------------------------------------------------------------------------


def test_malformed_yaml() -> None:
    text = VALID.replace("title: Introduction to Programming", "title: Loops: the basics")
    problem = only_problem(text)
    assert problem.code == "yaml-syntax"
    assert where(problem) == (2, 13)
    assert "in quotes" in problem.hint


def test_unclosed_bracket() -> None:
    problem = only_problem("design: x\nroute: [a, b\n")
    assert problem.code == "yaml-syntax"
    assert problem.line == 3


def test_duplicate_keys_are_refused_at_the_second() -> None:
    text = VALID.replace("    title: Project\n", "    title: Project\n    title: Final project\n")
    problem = only_problem(text)
    assert problem.message == "'title' is given twice in the same mapping (first at line 26)"
    assert where(problem) == (27, 5)
    assert problem.code == "duplicate-key"


def test_duplicate_keys_do_not_hide_reference_problems() -> None:
    text = VALID.replace("    title: Project\n", "    title: Project\n    title: Final\n").replace(
        "  - project\n", "  - projet\n"
    )
    problems = problems_of(text)
    assert [(p.code, p.line) for p in problems] == [("duplicate-key", 27), ("reference", 43)]


def test_duplicate_top_level_keys() -> None:
    problem = only_problem(VALID + "grade: progress\n")
    assert where(problem) == (47, 1)


def test_tabs_in_indentation() -> None:
    text = VALID.replace("    title: Project", "\ttitle: Project")
    problem = only_problem(text)
    assert problem.code == "tab"
    assert problem.line == 26
    assert "spaces" in problem.hint


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert load_design(b"\xef\xbb\xbf" + VALID.encode()).id == "intro"
    assert load_design("\ufeff" + VALID).id == "intro"


def test_a_bom_does_not_shift_columns() -> None:
    text = "\ufeff" + VALID.replace("design: intro", "design: Intro")
    assert where(only_problem(text)) == (1, 9)


def test_utf16_is_refused_clearly() -> None:
    problem = only_problem(VALID.encode("utf-16"))
    assert problem.code == "encoding"
    assert "UTF-16" in problem.message


def test_crlf_line_endings_are_accepted_with_the_same_lines() -> None:
    assert load_design(VALID.replace("\n", "\r\n")).id == "intro"
    text = VALID.replace("  - project\n", "  - projet\n").replace("\n", "\r\n")
    assert where(only_problem(text)) == (42, 5)


def test_non_utf8_bytes_name_the_line_and_column() -> None:
    data = VALID.encode().replace(b"title: Welcome", b"title: W\xe9lcome")
    problem = only_problem(data)
    assert problem.code == "encoding"
    assert "0xe9" in problem.message
    assert where(problem) == (11, 35)


def test_lone_surrogates_in_text_are_refused() -> None:
    problem = only_problem(VALID.replace("title: Welcome", "title: W\udce9lcome"))
    assert problem.code == "encoding"
    assert where(problem) == (11, 35)


def test_aliases_are_refused_where_they_are_used() -> None:
    text = VALID.replace("title: Loops check", "title: &t Loops check").replace(
        "    title: Project", "    title: *t"
    )
    problem = only_problem(text)
    assert problem.code == "alias"
    assert where(problem) == (26, 12)


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    started = time.perf_counter()
    problems = problems_of("\n".join(lines))
    assert time.perf_counter() - started < 1.0
    assert {p.code for p in problems} >= {"alias"}


def test_merge_keys_are_refused() -> None:
    problems = problems_of("base: &b {title: x}\nother:\n  <<: *b\n")
    assert "merge keys ('<<') are not supported in designs" in [p.message for p in problems]


def test_very_large_files_are_refused_before_parsing() -> None:
    big = VALID + "#" * MAX_DESIGN_BYTES
    problem = only_problem(big)
    assert problem.code == "too-large"
    assert "limit is 5 MB" in problem.message
    assert only_problem(big.encode()).code == "too-large"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 5_000 + "1" + "}" * 5_000,
        "activities:\n  - " + "[" * 2_000 + "]" * 2_000,
        "# a comment [[[[\nroute: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    ],
)
def test_deep_nesting_is_refused_without_crashing(text: str) -> None:
    """However deep libyaml itself lets flow collections go, the loader refuses past MAX_DEPTH."""
    problem = only_problem(text)
    assert problem.code == "too-deep"
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.line >= 1


def test_deep_block_nesting_is_refused() -> None:
    text = "".join(" " * (2 * level) + f"k{level}:\n" for level in range(MAX_DEPTH + 2))
    assert only_problem(text + " " * (2 * MAX_DEPTH + 4) + "x: 1\n").code == "too-deep"


def test_brackets_in_quotes_and_comments_do_not_count_as_nesting() -> None:
    # A syntax error in a file full of brackets inside strings and comments stays a syntax error.
    text = "title: '" + "[" * 2_000 + "'\n# " + "{" * 2_000 + "\nroute: [a, b\n  c: d\n"
    assert only_problem(text).code == "yaml-syntax"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the design must be a mapping of keys"),
        ("just words\n", "the design must be a mapping of keys"),
        ("", "the design file is empty"),
        ("   \n\n", "the design file is empty"),
        ("# only a comment\n", "the design file is empty"),
        ("---\n...\n", "the design file is empty"),
    ],
)
def test_top_level_shapes(text: str, message: str) -> None:
    assert only_problem(text).message.startswith(message)


def test_more_than_one_document() -> None:
    problem = only_problem(VALID + "---\ndesign: other\n")
    assert problem.code == "multiple-documents"
    assert problem.line == 47


def test_yaml_tags_are_refused() -> None:
    text = VALID.replace("title: Welcome", "title: !!python/object:os.system Welcome")
    problem = only_problem(text)
    assert problem.message == "the YAML tag '!!python/object:os.system' is not supported in designs"
    assert where(problem) == (11, 34)


def test_explicit_core_tags_and_dates_are_plain_values() -> None:
    text = VALID.replace("title: Welcome", "title: !!str 2024-09-01")
    compiled = load_design(text)
    assert compiled.design.activities["welcome"].title == "2024-09-01"


def test_non_finite_numbers_are_refused() -> None:
    problem = only_problem(VALID.replace("pass_mark: 0.6", "pass_mark: .nan"))
    assert problem.message == "'.nan' is not a usable number"


def test_control_characters_are_refused() -> None:
    problem = only_problem(VALID.replace("title: Welcome", "title: Wel\x00come"))
    assert problem.code == "yaml-syntax"
    assert where(problem) == (11, 37)


def test_a_collection_as_a_key() -> None:
    text = VALID + "? [a, b]\n: value\n"
    problem = only_problem(text)
    assert problem.message == "a key must be a plain word, not a list or a mapping"
    assert where(problem) == (47, 3)


# --- files -----------------------------------------------------------------------------------------


def test_page_files_are_read_beside_the_design_and_inlined(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "loops.md").write_text("# Loops\n\nfor i in range(3)", "utf-8")
    design = tmp_path / "design.yaml"
    design.write_text(VALID.replace('body: "# Loops"', "file: pages/loops.md"), "utf-8")
    compiled = load_design_file(design)
    page = compiled.design.activities["loops-lesson"]
    assert isinstance(page, Page)
    assert page.body == "# Loops\n\nfor i in range(3)"
    assert page.file == "pages/loops.md"


def test_a_missing_page_file_is_a_problem_with_its_line(tmp_path: Path) -> None:
    design = tmp_path / "design.yaml"
    design.write_text(VALID.replace('body: "# Loops"', "file: pages/lops.md"), "utf-8")
    with pytest.raises(DesignError) as caught:
        load_design_file(design)
    [problem] = caught.value.problems
    assert problem.message.startswith("the page file 'pages/lops.md' does not exist")
    assert (problem.file, problem.line, problem.column) == (str(design), 17, 50)


def test_page_files_outside_the_design_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.md").write_text("secret", "utf-8")
    (tmp_path / "course").mkdir()
    design = tmp_path / "course" / "design.yaml"
    design.write_text(VALID.replace('body: "# Loops"', "file: ../secret.md"), "utf-8")
    with pytest.raises(DesignError) as caught:
        load_design_file(design)
    assert "outside the design's folder" in caught.value.problems[0].message


def test_unreadable_design_files(tmp_path: Path) -> None:
    with pytest.raises(DesignError) as caught:
        load_design_file(tmp_path / "nope.yaml")
    assert caught.value.problems[0].code == "unreadable"
    assert "No such file" in caught.value.problems[0].message
    with pytest.raises(DesignError) as caught:
        load_design_file(tmp_path)
    assert "is a folder" in caught.value.problems[0].message


# --- scale -----------------------------------------------------------------------------------------


def test_a_design_of_a_thousand_activities_loads_well_under_a_second() -> None:
    text = generate_design(1000)
    load_design(text)  # warm the parser and pydantic
    timings = []
    for _ in range(3):  # the best of three: other processes on a busy machine only add time
        started = time.perf_counter()
        compiled = load_design(text)
        timings.append(time.perf_counter() - started)
    assert len(compiled.design.activities) >= 1000
    assert min(timings) < 1.0, f"loading took {min(timings):.2f} s"


def test_where_line_of_helper_matches_the_valid_text() -> None:
    # Guards the line numbers the tests above rely on.
    assert line_of(VALID, "  - project") == 42
    assert line_of(VALID, "    pass_mark: 0.6") == 27
