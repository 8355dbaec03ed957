#!/usr/bin/env bash
# Entry point on the lent GPU machine: bring in the carried wheels, then run a session mode.
# Usage: bash benchmarks/gpu/run.sh probe|main [session.py args...]
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchaudio, torchvision; print(torch.__version__, torchaudio.__version__, torchvision.__version__)"
mode=$1; shift
python3 benchmarks/gpu/session.py "$mode" --data .gpu/mir1k/clips.csv --out "$OUT" "$@" 2>&1 | tee "$OUT/session.log"
