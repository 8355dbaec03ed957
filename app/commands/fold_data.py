"""`cvsm fold-data ravdess`: build a fold's test data that does not exist as files yet (the
RAVDESS sung takes over MIR-1K dev accompaniment, model/evaluation/overlay.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fold-data", help="build an evaluation fold's test manifest and audio")
    p.add_argument("fold", choices=["ravdess"], help="the fold (A and B read MIR-1K dev as is)")
    p.add_argument("--voices", type=Path, required=True, help="voices-extra clips.csv")
    p.add_argument("--accompaniment", type=Path, required=True,
                   help="MIR-1K dev clips.csv (its accompaniment stems are cut)")
    p.add_argument("--out", type=Path, required=True, help="output folder (manifest.csv)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.evaluation.overlay import build_overlay

    start = time.perf_counter()
    manifest = build_overlay(args.voices, args.accompaniment, args.out,
                             progress=lambda xs: tqdm(xs, desc="overlay", unit="take"))
    rows = sum(1 for _ in manifest.open()) - 1
    print(f"wrote {rows} tracks and {manifest} in {time.perf_counter() - start:.1f} s")
    return 0
