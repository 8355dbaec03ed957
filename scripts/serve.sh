#!/usr/bin/env bash
# Set up everything on a fresh machine and run the main job: the search service (`cvsm serve`).
# First run: migrates the SQLite catalog in ./data, loads the bundled model and indexes a small
# synthetic demo catalog. Address: CVSM_HOST / CVSM_PORT (default 127.0.0.1:8000), or flags:
#   bash scripts/serve.sh --host 0.0.0.0 --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/cvsm serve "$@"
