#!/usr/bin/env bash
# Set up everything on a fresh machine and run the whole test suite (CI runs exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# The browser test drives Debian's Chromium; without it that one test is skipped.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the browser test will be skipped"
fi
.venv/bin/ruff check .
# pytest exits non-zero (5) when it collects no tests: set -e turns that into a failure.
.venv/bin/python -m pytest -q "$@"
