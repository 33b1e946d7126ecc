"""Under CI a skipped test fails the run (tests/conftest.py), so a missing service cannot hide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARD = (
    "from tests.conftest import (\n"
    "    pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary)\n"
)
SKIPPING = "import pytest\n\ndef test_needs_a_service():\n    pytest.skip('service missing')\n"


def run_pytest(folder: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (folder / "conftest.py").write_text(GUARD)
    (folder / "test_skipping.py").write_text(SKIPPING)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(("ci", "exit_code"), [("true", 1), ("", 0)])
def test_a_skip_fails_the_run_only_under_ci(tmp_path: Path, ci: str, exit_code: int) -> None:
    result = run_pytest(tmp_path, ci)
    assert result.returncode == exit_code, result.stdout + result.stderr
    if exit_code:
        assert "skipped under CI" in result.stdout
        assert "test_skipping.py::test_needs_a_service" in result.stdout
