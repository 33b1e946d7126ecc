"""The project's domain exceptions. ``web/errors.py`` is the one place that maps them to HTTP.

Every error carries a message a person can act on: what went wrong and what to do.

    AdaptiveLtiError
    ├── DesignError            a design file has problems (each with file:line:column)
    ├── EngineError            the engine was asked something impossible (unknown activity, ...)
    ├── LaunchError            an LTI login or launch failed a check (status 400/401/403)
    ├── NotFoundError          something the request names does not exist (404)
    ├── PermissionDeniedError  the caller's role does not allow this (403)
    ├── ConflictError          the request clashes with what is stored (409)
    ├── InvalidInputError      a form or API payload is wrong (422)
    └── PlatformServiceError   a call to the platform (AGS, NRPS, token) failed (502)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class AdaptiveLtiError(Exception):
    """Base of every error the project raises on purpose."""

    status_code = 400

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


@dataclass(frozen=True)
class Problem:
    """One problem in a design file, with where it is and how to fix it."""

    message: str
    file: str = "<design>"
    line: int = 0
    column: int = 0
    hint: str = ""
    severity: str = "error"  # "error" or "warning"
    code: str = "invalid"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


# A design with thousands of mistakes (a generated file, a wrong file) is shown by its first
# problems and a count of the rest: the designer fixes the kind, not each line.
MAX_LISTED_PROBLEMS = 100
MORE_PROBLEMS = "more-problems"


def more_problems(count: int, codes: Iterable[str], severity: str, file: str) -> Problem:
    """The line that stands for ``count`` omitted problems of ``codes``, at their worst severity."""
    kinds = sorted(set(codes))
    noun = "problem" if count == 1 else "problems"
    kind_word = "kind" if len(kinds) == 1 else "kinds"
    return Problem(
        f"… and {count:,} more {noun} of the same {kind_word} ({', '.join(kinds)})",
        file,
        hint="fix the problems listed and check the design again to see the rest",
        severity=severity,
        code=MORE_PROBLEMS,
    )


def cap_problems(problems: Sequence[Problem], limit: int = MAX_LISTED_PROBLEMS) -> list[Problem]:
    """The first ``limit`` problems and, when there were more, one line counting the rest."""
    if len(problems) <= limit:
        return list(problems)
    rest = problems[limit:]
    severity = "error" if any(p.severity == "error" for p in rest) else "warning"
    summary = more_problems(len(rest), (p.code for p in rest), severity, problems[0].file)
    return [*problems[:limit], summary]


class DesignError(AdaptiveLtiError):
    """A design could not be loaded; ``problems`` lists every problem found."""

    status_code = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem("the design is not valid")
        capped = any(problem.code == MORE_PROBLEMS for problem in problems)
        others = len(problems) - 1 - capped
        more = f" (and {'more than ' if capped else ''}{others} more)" if others > 0 else ""
        super().__init__(f"{first}{more}", hint="Fix the design file and load it again.")


class EngineError(AdaptiveLtiError):
    status_code = 409


class LaunchError(AdaptiveLtiError):
    """An LTI login or launch was refused. ``check`` names the failed check in plain words."""

    def __init__(self, check: str, message: str, *, hint: str = "", status_code: int = 401) -> None:
        super().__init__(message, hint=hint)
        self.check = check
        self.status_code = status_code


class NotFoundError(AdaptiveLtiError):
    status_code = 404


class PermissionDeniedError(AdaptiveLtiError):
    status_code = 403


class ConflictError(AdaptiveLtiError):
    status_code = 409


class InvalidInputError(AdaptiveLtiError):
    status_code = 422


class PlatformServiceError(AdaptiveLtiError):
    status_code = 502
