"""Where each part of a design was written: document paths mapped to lines and columns.

The loader fills a ``SourceMap`` while it turns the YAML node tree into plain values, so that a
problem found later — by pydantic, by ``compile_design`` or by the linter — can name the line and
column of the node it is about. Paths are the same tuples ``compile_design`` uses:
``("route", 2, "branch", 0, "when")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A location inside the design document, as keys and list indexes.
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column. ``style`` and ``single_line`` are kept for scalars only.

    ``style`` is YAML's scalar style: "" (plain), "'" or '"' (quoted), "|" or ">" (block). A
    column inside a condition can be added to the scalar's column only when the scalar is plain
    or quoted and on one line; otherwise the scalar's own position is the best we can say.
    """

    line: int
    column: int
    style: str | None = None
    single_line: bool = True

    def offset_by(self, column_in_text: int) -> Position:
        """The position of the ``column_in_text``-th character of this scalar (1-based)."""
        if column_in_text <= 0 or not self.single_line or self.style not in {"", "'", '"'}:
            return self
        quote = 1 if self.style in {"'", '"'} else 0
        return Position(self.line, self.column + quote + column_in_text - 1)


@dataclass
class SourceMap:
    """Positions of the values (and of the keys) of a design document, by path."""

    file: str = "<design>"
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Position | None:
        """The position of ``path`` (its key if ``key`` and it has one), else of its nearest parent.

        Walking up means a problem about a missing or unknown part still points at the closest
        thing the designer wrote.
        """
        current = path
        while True:
            if key and current in self.keys:
                return self.keys[current]
            if current in self.values:
                return self.values[current]
            if not current:
                return None
            current = current[:-1]
