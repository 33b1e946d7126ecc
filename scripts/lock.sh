#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml: requirements-dev.lock (everything the tests need) and
# requirements.lock (what the tool needs to run, at the same versions). uv resolves for every
# platform (--universal) and records each file's sha256, so pip installs exactly these files.
# Usage: bash scripts/lock.sh [--upgrade | --upgrade-package NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools" && "$tools/bin/pip" install -q "uv==$UV_VERSION"
common=(--universal --python-version 3.11 --generate-hashes --quiet "$@")
"$tools/bin/uv" pip compile pyproject.toml scripts/build-requirements.in --extra dev \
  "${common[@]}" -o requirements-dev.lock
"$tools/bin/uv" pip compile pyproject.toml scripts/build-requirements.in -c requirements-dev.lock \
  "${common[@]}" -o requirements.lock
