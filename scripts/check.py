"""Run every check the project has, in order, and stop at the first failure.

ruff (lint and format), mypy strict on src/, import-linter (the layers), then pytest: core, db,
service and web tests on SQLite and PostgreSQL, end-to-end tests through the real server, and
browser tests in Chromium and the deployment tests behind nginx (both installed from Debian's
packages when missing and allowed). The documentation site is built by a test
(tests/docs/test_docs_site.py runs ``mkdocs build --strict`` into a temporary directory), not by a
step here: pytest then reports it with the rest, ``pytest tests/docs`` runs it alone, and the same
test proves that a broken link fails the build.
Usage: python scripts/check.py [pytest arguments...]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(title: str, *command: str) -> None:
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        # pytest's exit 5 ("no tests collected") is a failure here like any other.
        sys.exit(f"*** {title} failed (exit {result.returncode})")


def ensure_chromium() -> None:
    """Browser tests drive Debian's Chromium; install it when missing and we may (root + apt)."""
    if os.environ.get("ADAPTIVE_LTI_CHROMIUM") or shutil.which("chromium"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("\n=== installing Chromium for the browser tests (apt-get)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)


def ensure_nginx() -> None:
    """tests/e2e/test_nginx_processes.py runs Debian's nginx; install it like Chromium."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("\n=== installing nginx for the deployment tests (apt-get)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=False, env=env)


def main() -> None:
    tool = lambda name: str(BIN / name)  # noqa: E731 - the venv's own executables
    run(
        "ruff lint", tool("ruff"), "check", "src", "tests", "bench", "migrations", "scripts", "docs"
    )
    run(
        "ruff format",
        tool("ruff"),
        "format",
        "--check",
        "src",
        "tests",
        "bench",
        "migrations",
        "scripts",
        "docs",
    )
    run("mypy (strict)", tool("mypy"))
    run("import-linter", tool("lint-imports"))
    ensure_chromium()
    ensure_nginx()
    run("pytest", sys.executable, "-m", "pytest", *sys.argv[1:])
    print("\nall checks passed")


if __name__ == "__main__":
    main()
