"""Running a command as the ``adaptive-lti`` entry point does, in-process."""

from __future__ import annotations

import pytest

from adaptive_lti.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The exit code, standard output and standard error of ``adaptive-lti ARGV...``."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
