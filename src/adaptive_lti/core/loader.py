"""Read a design file: YAML text in, a ``CompiledDesign`` out, or every problem with its line.

Reading goes in four passes, each adding problems rather than stopping at the first:

1. **Bytes to text.** At most ``MAX_DESIGN_BYTES`` (5 MB); UTF-8 only. A UTF-8 byte-order mark
   (which Windows editors add) is accepted and dropped; UTF-16 is refused with a hint to save as
   UTF-8. CRLF line endings are accepted (libyaml reads them as line breaks).
2. **YAML events to plain values**, on libyaml's C parser (the pure-Python parser is eight times
   slower, see the reference measurements). We build the values from the event stream ourselves
   instead of asking PyYAML to compose a node tree, because that lets us, in one pass: record
   the line and column of every key and value (``SourceMap``), refuse duplicate keys (PyYAML
   silently keeps the last), refuse aliases at the ``*name`` that uses them (no alias bombs),
   cap nesting depth (libyaml's recursive composer crashes the process past ~30,000 levels), and
   never let YAML 1.1 turn a key such as ``no:`` into ``False``.
3. **Plain values to the ``Design`` model.** Route steps are checked one by one against the
   construct their key names (branch, remediate, choose, split, review), so a wrong step gets one
   clear message instead of pydantic's attempt at every member of the union. Every other
   validation error is rewritten in plain words at the line of the node it is about.
4. **``compile_design``**: names and conditions (a condition's error points at the column inside
   the condition when it is written on one line).

``load_design_file`` also resolves page ``file:`` references relative to the design file and
inlines their Markdown into ``body`` (``file`` keeps saying where it came from), so a loaded
design is self-contained.

The words of a validation problem (what is wrong where, and what to write instead) are
``core/loader_wording.py``'s.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from adaptive_lti.core.compiled import CompiledDesign, compile_design
from adaptive_lti.core.design import IDENTIFIER, Design, Identifier, Page
from adaptive_lti.core.errors import MAX_LISTED_PROBLEMS, DesignError, Problem, more_problems
from adaptive_lti.core.loader_wording import (
    STEP_KINDS,
    STEP_SHAPES,
    allowed_keys,
    describe_path,
    describe_value,
    document_path,
    inside_a_step,
    missing_hint,
    plain_words,
    unknown_key_hint,
    without_echoes,
)
from adaptive_lti.core.source import Path, Position, SourceMap

MAX_DESIGN_BYTES = 5 * 1024 * 1024


MAX_PAGE_FILE_BYTES = 1024 * 1024


MAX_DEPTH = 64


_YAML_TAG = "tag:yaml.org,2002:"


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


_IDENTIFIER_ADAPTER: TypeAdapter[str] = TypeAdapter(Identifier)


_IDENTIFIER_PATTERN = re.compile(IDENTIFIER)


class _Poison:
    """Stands for a value that already has a problem (an alias, an unsupported tag)."""

    def __repr__(self) -> str:
        return "<invalid>"


POISON = _Poison()


def load_design(text: str | bytes, filename: str = "<design>") -> CompiledDesign:
    """Load and compile a design from YAML text; raise ``DesignError`` listing every problem."""
    compiled, problems = read_design(text, filename)
    if compiled is None:
        raise DesignError(problems)
    return compiled


def load_design_file(path: str | FilePath) -> CompiledDesign:
    """Load a design file; page ``file:`` references are read relative to it and inlined."""
    file_path = FilePath(path)
    name = str(path)
    try:
        size = file_path.stat().st_size
        if size > MAX_DESIGN_BYTES:
            raise DesignError([_too_large(name, size)])
        data = file_path.read_bytes()
    except IsADirectoryError:
        raise DesignError(
            [Problem(f"'{name}' is a folder, not a design file", name, code="unreadable")]
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise DesignError(
            [
                Problem(
                    f"cannot read '{name}': {reason}",
                    name,
                    hint="check the path and that you may read the file",
                    code="unreadable",
                )
            ]
        ) from None
    compiled, problems = read_design(data, name, base_directory=file_path.parent)
    if compiled is None:
        raise DesignError(problems)
    return compiled


def read_design(
    text: str | bytes, filename: str = "<design>", base_directory: FilePath | None = None
) -> tuple[CompiledDesign | None, list[Problem]]:
    """The compiled design, or ``None`` and every problem found (sorted by line and column)."""
    reader = _Reader(filename)
    decoded = reader.decode(text)
    if decoded is None:
        return None, reader.problems
    data = reader.parse(decoded)
    if reader.fatal or data is None:
        return None, reader.sorted_problems()
    if not isinstance(data, dict):
        reader.add(
            (),
            "the design must be a mapping of keys (design:, title:, activities:, route:, ...), "
            f"not {describe_value(data)}",
            "start the file with 'design: my-course' on its own line",
            code="not-a-mapping",
        )
        return None, reader.sorted_problems()
    page_bodies = reader.read_page_files(data, base_directory) if base_directory else {}
    design = reader.validate(data)
    if design is None:
        return None, reader.sorted_problems()
    # Problems so far (a duplicate key, a missing page file) do not stop compiling: it may
    # find more, and the designer should see them all at once.
    if page_bodies:
        design = _inline_pages(design, page_bodies)
    compiled, compile_problems = compile_design(design)
    for problem in compile_problems:
        position = reader.source.locate(problem.path)
        if position is not None:
            position = position.offset_by(problem.column_in_text)
        reader.add_at(
            position,
            problem.message,
            problem.hint,
            code="condition" if problem.path[-1] in {"when", "passed_when"} else "reference",
        )
    if compiled is None or reader.problems:
        return None, reader.sorted_problems()
    return dataclasses.replace(compiled, source=reader.source), []


@dataclasses.dataclass
class _Frame:
    """A mapping or list being built from the event stream."""

    container: dict[str, Any] | list[Any]
    path: Path
    key: str | None = None  # mapping: the key whose value comes next
    key_is_pending: bool = False
    key_invalid: bool = False


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.source = SourceMap(filename)
        self.problems: list[Problem] = []
        # Past MAX_LISTED_PROBLEMS a problem is only counted (its hint, which may search for
        # close names, is never worked out): a file with 100,000 mistakes stays fast.
        self.omitted = 0
        self.omitted_codes: set[str] = set()
        self.omitted_severity = "warning"
        self.fatal = False
        # Paths whose value already has a problem: validation errors there would repeat it.
        self.poisoned: set[Path] = set()

    # problems

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_LISTED_PROBLEMS

    @property
    def found(self) -> int:
        """Problems found so far, listed or only counted."""
        return len(self.problems) + self.omitted

    def count_omitted(self, code: str, severity: str = "error") -> None:
        self.omitted += 1
        self.omitted_codes.add(code)
        if severity == "error":
            self.omitted_severity = "error"

    def add(
        self, path: Path, message: str, hint: str = "", *, code: str, key: bool = False
    ) -> None:
        if self.full:
            self.count_omitted(code)
            return
        self.add_at(self.source.locate(path, key=key), message, hint, code=code)

    def add_at(
        self,
        position: Position | None,
        message: str,
        hint: str = "",
        *,
        code: str,
        severity: str = "error",
    ) -> None:
        if self.full:
            self.count_omitted(code, severity)
            return
        line, column = (position.line, position.column) if position else (0, 0)
        self.problems.append(Problem(message, self.filename, line, column, hint, severity, code))

    def add_mark(self, mark: Any, message: str, hint: str = "", *, code: str) -> None:
        position = Position(mark.line + 1, mark.column + 1) if mark is not None else None
        self.add_at(position, message, hint, code=code)

    def sorted_problems(self) -> list[Problem]:
        """The listed problems in file order, and a line counting the omitted ones."""
        listed = sorted(self.problems, key=lambda p: (p.line, p.column))
        if self.omitted:
            listed.append(
                more_problems(
                    self.omitted, self.omitted_codes, self.omitted_severity, self.filename
                )
            )
        return listed

    # pass 1: bytes to text

    def decode(self, text: str | bytes) -> str | None:
        if isinstance(text, bytes):
            if len(text) > MAX_DESIGN_BYTES:
                self.problems.append(_too_large(self.filename, len(text)))
                return None
            if text.startswith((b"\xff\xfe", b"\xfe\xff")):
                self.problems.append(
                    Problem(
                        "the file is UTF-16 text; designs are read as UTF-8",
                        self.filename,
                        1,
                        1,
                        "save the file as UTF-8 (in most editors: Save as… > Encoding > UTF-8)",
                        code="encoding",
                    )
                )
                return None
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError as error:
                line = text.count(b"\n", 0, error.start) + 1
                line_start = text.rfind(b"\n", 0, error.start) + 1
                column = len(text[line_start : error.start].decode("utf-8", "replace")) + 1
                self.problems.append(
                    Problem(
                        f"the file is not UTF-8 text: byte 0x{text[error.start]:02x} cannot be "
                        "read",
                        self.filename,
                        line,
                        column,
                        "save the file as UTF-8 (in most editors: Save as… > Encoding > UTF-8)",
                        code="encoding",
                    )
                )
                return None
        else:
            decoded = text
            try:
                size = len(decoded.encode("utf-8"))
            except UnicodeEncodeError as error:
                # A lone surrogate (e.g. text decoded with errors="surrogateescape").
                line, column = _line_column(decoded, error.start)
                self.problems.append(
                    Problem(
                        "the text contains a character that is not valid Unicode",
                        self.filename,
                        line,
                        column,
                        "save the file as UTF-8 and load it again",
                        code="encoding",
                    )
                )
                return None
            if size > MAX_DESIGN_BYTES:
                self.problems.append(_too_large(self.filename, size))
                return None
        # A UTF-8 byte-order mark is harmless: accept it (Notepad writes one).
        decoded = decoded.removeprefix("\ufeff")
        if not decoded.strip() or all(
            not line.strip() or line.lstrip().startswith("#") for line in decoded.splitlines()
        ):
            self.problems.append(
                Problem(
                    "the design file is empty",
                    self.filename,
                    hint="start with 'design: my-course', 'title: ...', 'activities:' and "
                    "'route:' (adaptive-lti schema shows every key)",
                    code="empty",
                )
            )
            return None
        return decoded

    # pass 2: YAML events to values

    def parse(self, text: str) -> Any:
        loader = yaml.CSafeLoader(text)
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        try:
            while loader.check_event():
                event = loader.get_event()
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        self.add_mark(
                            event.start_mark,
                            "the file holds more than one YAML document ('---' starts another)",
                            "a design file holds one design: remove the second '---' and what "
                            "follows, or move it to its own file",
                            code="multiple-documents",
                        )
                        self.fatal = True
                        return None
                    continue
                if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                    if stack and _expects_key(stack[-1]):
                        self._take_key(stack[-1], event)
                        continue
                    path = _child_path(stack)
                    value = self._scalar(event, path)
                    root = _attach(stack, value, root)
                elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                    if len(stack) >= MAX_DEPTH:
                        self.add_mark(
                            event.start_mark,
                            f"the design is nested more than {MAX_DEPTH} levels deep",
                            "a design needs a few levels; check the indentation",
                            code="too-deep",
                        )
                        self.fatal = True
                        return None
                    if stack and _expects_key(stack[-1]):
                        self.add_mark(
                            event.start_mark,
                            "a key must be a plain word, not a list or a mapping",
                            "write 'name: value'",
                            code="invalid-key",
                        )
                        stack[-1].key_invalid = True
                        path = (*stack[-1].path, "?")
                        self.poisoned.add(path)
                    else:
                        path = _child_path(stack)
                    start: Any = event.start_mark
                    self.source.values[path] = Position(start.line + 1, start.column + 1)
                    self._check_tag(event, path, collection=True)
                    container: dict[str, Any] | list[Any] = (
                        {} if isinstance(event, yaml.MappingStartEvent) else []
                    )
                    stack.append(_Frame(container, path))
                elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                    frame = stack.pop()
                    if stack and stack[-1].key_invalid and _expects_key(stack[-1]):
                        # The finished collection was (wrongly) a key: its value follows.
                        stack[-1].key, stack[-1].key_is_pending = "?", True
                        stack[-1].key_invalid = False
                        continue
                    root = _attach(stack, frame.container, root)
        except yaml.MarkedYAMLError as error:
            # libyaml scans flow collections ahead of the events it hands us, and (from PyYAML
            # 6.0.4's libyaml on) gives up with its own nesting error before our depth check
            # above sees the levels: find the too-deep bracket ourselves.
            too_deep = _flow_too_deep_at(text, MAX_DEPTH)
            if too_deep is not None:
                self.add_at(
                    Position(*_line_column(text, too_deep)),
                    f"the design is nested more than {MAX_DEPTH} levels deep",
                    "a design needs a few levels; check the brackets",
                    code="too-deep",
                )
            else:
                self._syntax_problem(error, text)
            self.fatal = True
            return None
        except yaml.YAMLError as error:
            # ReaderError: a character YAML does not allow (control characters, NUL).
            position = getattr(error, "position", None)
            line, column = _line_column(text, position) if position is not None else (0, 0)
            character = getattr(error, "character", None)
            shown = f" (code {character:#04x})" if isinstance(character, int) else ""
            self.problems.append(
                Problem(
                    f"the file contains a character YAML does not allow{shown}",
                    self.filename,
                    line,
                    column,
                    "remove it; designs are plain text",
                    code="yaml-syntax",
                )
            )
            self.fatal = True
            return None
        finally:
            loader.dispose()
        if root is None:
            self.problems.append(
                Problem("the design file is empty", self.filename, 1, 1, code="empty")
            )
            self.fatal = True
        return root

    def _take_key(self, frame: _Frame, event: Any) -> None:
        mark = event.start_mark
        position = Position(mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            self.add_mark(mark, _ALIAS_MESSAGE, _ALIAS_HINT, code="alias")
            key = f"*{event.anchor}"
        else:
            key = event.value
            if event.style == "" and key == "<<":
                self.add_mark(
                    mark,
                    "merge keys ('<<') are not supported in designs",
                    "write the keys out in full",
                    code="alias",
                )
            elif event.style == "" and key in {"", "~", "null", "Null", "NULL"}:
                self.add_mark(mark, "a key is missing before ':'", code="invalid-key")
        assert isinstance(frame.container, dict)
        path = (*frame.path, key)
        if key in frame.container or path in self.source.keys:
            first = self.source.keys.get(path)
            where = f" (first at line {first.line})" if first else ""
            self.add_at(
                position,
                f"'{key}' is given twice in the same mapping{where}",
                "keep one of them: YAML would silently use only the last",
                code="duplicate-key",
            )
        else:
            self.source.keys[path] = position
        frame.key, frame.key_is_pending = key, True

    def _scalar(self, event: Any, path: Path) -> Any:
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            self.source.values[path] = Position(mark.line + 1, mark.column + 1)
            self.add_mark(mark, _ALIAS_MESSAGE, _ALIAS_HINT, code="alias")
            self.poisoned.add(path)
            return POISON
        single_line = event.end_mark.line == mark.line
        self.source.values[path] = Position(
            mark.line + 1, mark.column + 1, event.style, single_line
        )
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(event)
        if not tag.startswith(_YAML_TAG):
            self._check_tag(event, path, collection=False)
            return POISON
        kind = tag.removeprefix(_YAML_TAG)
        value: str = event.value
        try:
            if kind in {"str", "timestamp", "value", "merge", "binary"}:
                # No design field is a date: keep what was written (e.g. a title "2024-09-01").
                return value
            if kind == "null":
                return None
            if kind == "bool":
                return _CONSTRUCTOR.bool_values[value.lower()]
            if kind == "int":
                return _CONSTRUCTOR.construct_yaml_int(yaml.ScalarNode(tag, value))
            if kind == "float":
                number = _CONSTRUCTOR.construct_yaml_float(yaml.ScalarNode(tag, value))
                if not math.isfinite(number):
                    self.add_mark(
                        mark,
                        f"'{value}' is not a usable number",
                        "write a finite number such as 0.5",
                        code="wrong-type",
                    )
                    self.poisoned.add(path)
                    return POISON
                return number
        except (ValueError, KeyError, yaml.YAMLError):
            self.add_mark(mark, f"'{value}' is not a valid {kind}", code="wrong-type")
            self.poisoned.add(path)
            return POISON
        self._check_tag(event, path, collection=False)
        return POISON

    @staticmethod
    def _resolve(event: Any) -> str:
        resolve: Any = _RESOLVER.resolve
        return str(resolve(yaml.ScalarNode, event.value, event.implicit))

    def _check_tag(self, event: Any, path: Path, *, collection: bool) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            return
        allowed = {f"{_YAML_TAG}map", f"{_YAML_TAG}seq"} if collection else set()
        allowed_scalars = {"str", "int", "float", "bool", "null", "timestamp"}
        if tag in allowed or (
            not collection and tag.removeprefix(_YAML_TAG) in allowed_scalars and tag != ""
        ):
            return
        shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
        self.add_mark(
            event.start_mark,
            f"the YAML tag '{shown}' is not supported in designs",
            "remove the tag ('!...') and write the value itself",
            code="yaml-tag",
        )
        self.poisoned.add(path)

    def _syntax_problem(self, error: yaml.MarkedYAMLError, text: str) -> None:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "this is not valid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        character = _character_at(text, mark.index) if mark else ""
        if "\\t" in problem or "tab" in problem or character == "\t":
            self.problems.append(
                Problem(
                    "a tab character where YAML expects spaces",
                    self.filename,
                    line,
                    column,
                    "indent with spaces only (2 per level); set your editor to insert spaces",
                    code="tab",
                )
            )
            return
        context = f" {error.context}" if error.context else ""
        hint = _SYNTAX_HINTS.get(problem, "check the indentation and the ':' after each key")
        self.problems.append(
            Problem(
                f"this is not valid YAML: {problem}{context}",
                self.filename,
                line,
                column,
                hint,
                code="yaml-syntax",
            )
        )

    # pass 3: values to the Design model

    def validate(self, data: dict[str, Any]) -> Design | None:
        step_errors: list[tuple[Path, dict[str, Any]]] = []
        route = data.get("route")
        if isinstance(route, list):
            _check_steps(route, ("route",), step_errors)
        for path, error in step_errors:
            self._report_validation_error(path, error, data)
        try:
            return Design.model_validate(data)
        except ValidationError as error:
            reported_before = self.found
            raw = without_echoes(error.errors(include_url=False))
            for item in raw:
                loc = tuple(item["loc"])
                if inside_a_step(loc):
                    # Reported above, construct by construct, without the union's noise.
                    continue
                self._report_validation_error((), dict(item), data)
            if self.found == reported_before and not step_errors:
                for item in raw:
                    self._report_validation_error((), dict(item), data)
            self._report_unknown_activities(data)
            return None

    def _report_unknown_activities(self, data: dict[str, Any]) -> None:
        """Unknown activity ids in the route, found on the raw values.

        ``compile_design`` checks references once the design validates; when it does not, this
        finds the misspelt ids too, so one run shows every problem it can.
        """
        activities = data.get("activities")
        route = data.get("route")
        if not isinstance(activities, dict) or not isinstance(route, list):
            return
        known = [key for key in activities if isinstance(key, str)]
        for path, activity_id in _raw_references(route, ("route",)):
            if activity_id not in activities and _IDENTIFIER_PATTERN.match(activity_id):
                close = difflib.get_close_matches(activity_id, known, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else "declare it under 'activities'"
                self.add(path, f"unknown activity '{activity_id}'", hint, code="reference")

    def _report_validation_error(self, base: Path, error: dict[str, Any], data: Any) -> None:
        if self.full:
            # Counted only: locating the node and wording the hint cost more than the list.
            self.count_omitted(_CODES_BY_KIND.get(error["type"], "invalid"))
            return
        loc = (*base, *error["loc"])
        path, key_error = document_path(loc, data)
        if any(path[: len(poisoned)] == poisoned for poisoned in self.poisoned):
            return
        kind = error["type"]
        if kind == "missing":
            missing = str(loc[-1])
            parent = path[:-1] if path and path[-1] == loc[-1] else path
            self.add(
                parent,
                f"'{missing}' is missing in {describe_path(parent)}",
                missing_hint(missing),
                code="missing-key",
                key=True,
            )
            return
        if kind == "extra_forbidden":
            unknown = str(loc[-1])
            self.add(
                path,
                f"unknown key '{unknown}' in {describe_path(path[:-1])}",
                unknown_key_hint(unknown, allowed_keys(path[:-1], data)),
                code="unknown-key",
                key=True,
            )
            return
        message, hint, code = plain_words(error, path, key_error, self.source)
        if kind == "union_tag_invalid":
            path = (*path, "kind")  # point at the kind that was written
        self.add(path, message, hint, code=code, key=key_error)

    # page files

    def read_page_files(self, data: dict[str, Any], base: FilePath) -> dict[str, str]:
        """Markdown of every page ``file:``, by activity id; missing files are problems."""
        bodies: dict[str, str] = {}
        activities = data.get("activities")
        if not isinstance(activities, dict):
            return bodies
        root = base.resolve()
        for activity_id, activity in activities.items():
            if not isinstance(activity, dict) or activity.get("kind") != "page":
                continue
            name = activity.get("file")
            if not isinstance(name, str) or not name:
                continue
            path = ("activities", activity_id, "file")
            target = (base / name).resolve()
            if FilePath(name).is_absolute() or not target.is_relative_to(root):
                self.add(
                    path,
                    f"the page file '{name}' is outside the design's folder",
                    "keep page files beside the design (e.g. file: pages/loops.md)",
                    code="file",
                )
                continue
            try:
                if target.stat().st_size > MAX_PAGE_FILE_BYTES:
                    self.add(
                        path,
                        f"the page file '{name}' is larger than "
                        f"{MAX_PAGE_FILE_BYTES // 1024 // 1024} MB",
                        "split the page, or link large media instead of embedding it",
                        code="file",
                    )
                    continue
                bodies[activity_id] = target.read_text(encoding="utf-8")
            except FileNotFoundError:
                self.add(
                    path,
                    f"the page file '{name}' does not exist (looked in {base or '.'})",
                    "paths are relative to the design file; check the name",
                    code="file",
                )
            except UnicodeDecodeError:
                self.add(path, f"the page file '{name}' is not UTF-8 text", code="file")
            except OSError as error:
                self.add(
                    path,
                    f"cannot read the page file '{name}': {error.strerror or error}",
                    code="file",
                )
        return bodies


_RESOLVER = yaml.resolver.Resolver()


_ALIAS_MESSAGE = "aliases ('*name') are not allowed in designs"


_ALIAS_HINT = "write the value out in full where it is needed"


_QUOTE_HINT = (
    "a value holding ': ' must be in quotes, e.g. title: \"Loops: the basics\"; "
    "otherwise check the indentation"
)


_SYNTAX_HINTS = {
    "mapping values are not allowed here": _QUOTE_HINT,
    "mapping values are not allowed in this context": _QUOTE_HINT,
    "could not find expected ':'": "each key needs a ':' after it",
    "found unexpected end of stream": "a quote or bracket is not closed",
    "found unknown escape character": "inside double quotes write a backslash as '\\\\', "
    "or use single quotes",
}


# The code a validation error is reported under, for the count of omitted problems.
_CODES_BY_KIND = {"missing": "missing-key", "extra_forbidden": "unknown-key"}


def _too_large(filename: str, size: int) -> Problem:
    return Problem(
        f"the design file is {size / 1024 / 1024:.1f} MB; the limit is "
        f"{MAX_DESIGN_BYTES // 1024 // 1024} MB",
        filename,
        hint="move page content into page files (file: pages/x.md) or split the course",
        code="too-large",
    )


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _flow_too_deep_at(text: str, limit: int) -> int | None:
    """The offset of the first '[' or '{' that opens flow level ``limit + 1``, or None.

    A scan for what only an unparseable file needs: quoted scalars and comments are skipped,
    and at block level a bracket counts only where a value may start (after ':', '-', ',',
    '?' or at the start of a line), so brackets inside plain text are not mistaken for levels.
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    previous = "\n"  # the last character that was not a space
    index, size = 0, len(text)
    while index < size:
        character = text[index]
        if character in "'\"" and (depth or previous in ":-,?[{\n"):
            index = _after_quoted(text, index)
            previous = character
            continue
        if character == "#" and (index == 0 or text[index - 1] in " \t\n"):
            end = text.find("\n", index)
            index = size if end < 0 else end
            continue
        if character in "[{" and (depth or previous in ":-,?\n"):
            depth += 1
            if depth > limit:
                return index
        elif character in "]}" and depth:
            depth -= 1
        if character not in " \t":
            previous = character
        index += 1
    return None


def _after_quoted(text: str, start: int) -> int:
    """The offset just past the quoted scalar that starts at ``start`` (or the end of text)."""
    quote, index = text[start], start + 1
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            if quote == "'" and text.startswith("''", index):
                index += 2
                continue
            return index + 1
        index += 1
    return len(text)


def _character_at(text: str, index: int) -> str:
    return text[index] if 0 <= index < len(text) else ""


def _expects_key(frame: _Frame) -> bool:
    return isinstance(frame.container, dict) and not frame.key_is_pending


def _child_path(stack: list[_Frame]) -> Path:
    if not stack:
        return ()
    frame = stack[-1]
    if isinstance(frame.container, list):
        return (*frame.path, len(frame.container))
    assert frame.key is not None
    return (*frame.path, frame.key)


def _attach(stack: list[_Frame], value: Any, root: Any) -> Any:
    if not stack:
        return value
    frame = stack[-1]
    if isinstance(frame.container, list):
        frame.container.append(value)
    else:
        assert frame.key is not None
        if frame.key not in frame.container:  # a duplicate key keeps its first value
            frame.container[frame.key] = value
        frame.key, frame.key_is_pending = None, False
    return root


def _check_steps(steps: list[Any], path: Path, errors: list[tuple[Path, dict[str, Any]]]) -> None:
    for index, step in enumerate(steps):
        _check_step(step, (*path, index), errors)


def _error(kind: str, message: str, value: Any, loc: Path = ()) -> dict[str, Any]:
    return {"type": kind, "msg": message, "input": value, "loc": loc}


def _check_step(step: Any, path: Path, errors: list[tuple[Path, dict[str, Any]]]) -> None:
    if isinstance(step, str):
        try:
            _IDENTIFIER_ADAPTER.validate_python(step)
        except ValidationError as error:
            errors += [(path, dict(item)) for item in error.errors(include_url=False)]
        return
    if not isinstance(step, dict):
        errors.append((path, _error("step_shape", STEP_SHAPES, step)))
        return
    kinds = [key for key in step if key in STEP_KINDS]
    if len(kinds) != 1:
        errors.append((path, _error("step_shape", STEP_SHAPES, step)))
        return
    kind = kinds[0]
    construct = STEP_KINDS[kind]
    body, nested = construct.raw_children(step[kind], path)
    stripped: Any = {**step, kind: body} if nested else step
    try:
        construct.model.model_validate(stripped)
    except ValidationError as error:
        errors += [(path, dict(item)) for item in without_echoes(error.errors(include_url=False))]
    for then, then_path in nested:
        if isinstance(then, list):
            _check_steps(then, then_path, errors)
        elif then is not None:
            errors.append(
                (then_path, _error("list_type", "then must be a list of steps", then, ()))
            )


def _raw_references(steps: list[Any], path: Path) -> list[tuple[Path, str]]:
    """(path, activity id) for every id the raw route names, where it is well formed."""
    found: list[tuple[Path, str]] = []
    for index, step in enumerate(steps):
        here = (*path, index)
        if isinstance(step, str):
            found.append((here, step))
            continue
        if not isinstance(step, dict):
            continue
        for kind, construct in STEP_KINDS.items():
            body = step.get(kind)
            if not isinstance(body, dict):
                continue
            for name in construct.raw_reference_fields:
                value = body.get(name)
                values = value if isinstance(value, list) else [value]
                for position, item in enumerate(values):
                    if isinstance(item, str):
                        where = (*here, kind, name) + (
                            (position,) if isinstance(value, list) else ()
                        )
                        found.append((where, item))
        for kind, construct in STEP_KINDS.items():
            _, nested = construct.raw_children(step.get(kind), here)
            for then, then_path in nested:
                if isinstance(then, list):
                    found += _raw_references(then, then_path)
    return found


def _inline_pages(design: Design, bodies: dict[str, str]) -> Design:
    activities = dict(design.activities)
    for activity_id, body in bodies.items():
        page = activities.get(activity_id)
        if isinstance(page, Page):
            activities[activity_id] = page.model_copy(update={"body": body})
    return design.model_copy(update={"activities": activities})
