"""Time building the training cache (decoded stems) and the distillation teacher's targets.

    python benchmarks/teacher_cache.py --data MIR1K/clips.csv --data VOICES/clips.csv \
        --cache-dir ~/.cache/cvsm [--voice-shifts 0.88,0.94,1.06,1.12]

Prints the bank and teacher-grid sizes and wall times as JSON (a second run shows the reuse).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from model.data.manifest import read_manifests
from model.data.voice_shift import shifted_tracks
from model.training.bank import build_bank
from model.training.teacher import HOP, ResemblyzerTeacher, build_targets


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "cvsm")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--voice-shifts", default="",
                    help="speed factors of shifted copies of every voice, as training adds them")
    args = ap.parse_args()
    tracks = read_manifests(args.data)
    if args.voice_shifts:
        tracks += shifted_tracks(tracks, [float(f) for f in args.voice_shifts.split(",")])
    t0 = time.perf_counter()
    bank = build_bank(tracks, args.cache_dir, workers=args.workers)
    t1 = time.perf_counter()
    teacher = ResemblyzerTeacher()
    t2 = time.perf_counter()
    targets = build_targets(bank, teacher)
    t3 = time.perf_counter()
    minutes = float(bank.lengths.sum()) / 16_000 / 60
    print(json.dumps({
        "cpu": cpu_model(), "torch_threads":
        torch.get_num_threads(), "tracks": len(tracks),
        "voice_shifts": args.voice_shifts, "audio_minutes": round(minutes, 1),
        "bank": str(bank.root), "bank_s": round(t1 - t0, 1), "teacher_load_s": round(t2 - t1, 1),
        "teacher_version": teacher.version, "grid_windows": int(len(targets.valid)),
        "hop_s": HOP / 16_000, "sung_windows": int(targets.valid.sum()),
        "targets_s": round(t3 - t2, 1)}, indent=2))


if __name__ == "__main__":
    main()
