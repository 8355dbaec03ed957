#!/usr/bin/env bash
# Set up everything on a fresh machine and run the whole test suite (CI runs exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# The browser tests drive Debian's Chromium; docker-compose.yml is validated by Debian's
# docker-compose (`config`, no Docker engine needed). Without them those tests are skipped.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq $missing >/dev/null) \
    || echo "could not install$missing: the tests that need them will be skipped"
fi
.venv/bin/ruff check .
# pytest exits non-zero (5) when it collects no tests: set -e turns that into a failure.
.venv/bin/python -m pytest -q "$@"
