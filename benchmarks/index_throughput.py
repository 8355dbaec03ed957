"""Throughput of `cvsm index` on this machine: tracks/s and x real time, end to end (decode in
worker processes, embed, SQL commit, FAISS save), on a synthetic catalog.

    python benchmarks/index_throughput.py --singers 6 --songs 4 --seconds 30 --workers 2

Uses the bundled model when present, else a freshly initialised network of the same
architecture (the same cost per second of audio). SQLite in a temporary data dir.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from index.job import JobConfig, run_index
from model import checkpoint
from model.embedder import Embedder
from model.encoder import CVSMModel
from model.synth import generate
from model.weights import DEFAULT_CHECKPOINT


def model_file(folder: Path) -> Path:
    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    torch.manual_seed(0)
    path = folder / "init.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--singers", type=int, default=6)
    p.add_argument("--songs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = generate(tmp / "catalog", args.singers, args.songs, args.seconds, seed=0)
        ckpt = model_file(tmp)
        embedder = Embedder.from_checkpoint(ckpt, "cpu")
        cfg = JobConfig(manifest, tmp / "data", workers=args.workers, batch=args.batch,
                        progress=False)
        first = run_index(cfg, embedder)
        again = run_index(cfg, embedder)
    print(first.line())
    print("re-run:", again.line())
    print(json.dumps({"tracks": first.indexed, "audio_s": round(first.audio_seconds, 1),
                      "seconds": round(first.seconds, 1),
                      "tracks_per_s": round(first.tracks_per_s, 3),
                      "x_realtime": round(first.realtime, 2), "rerun_s": round(again.seconds, 2),
                      "model": "bundled" if ckpt == DEFAULT_CHECKPOINT else "untrained B0",
                      "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    main()
