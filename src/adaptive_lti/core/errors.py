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


class DesignError(AdaptiveLtiError):
    """A design could not be loaded; ``problems`` lists every problem found."""

    status_code = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem("the design is not valid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
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
