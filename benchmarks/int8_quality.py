"""Static int8 against fp32 on real music: per-track cosine, top-10 overlap, retrieval, speed.

    python benchmarks/int8_quality.py --out runs/int8.json

Every MIR-1K dev clip's mixture (vocals + accompaniment, 746 tracks) is embedded by the bundled
model through ONNX Runtime fp32 (the reference path's numbers, docs/benchmarks.md) and through
the static int8 graph (`--backend onnx-int8`). Reported: cosine between the two vectors of each
track; the overlap of each track's top-10 neighbours (cosine, itself excluded) under the two;
mix -> mix P@1/mAP (relevant = same singer, other songs only; the bundled model saw these
singers, so only the difference between the rows means anything); backbone time for 30 chunks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from model.data.manifest import read_manifest
from model.evaluation.data import read_audio
from model.evaluation.retrieval import retrieval_metrics
from model.inference.embedder import Embedder
from model.weights import default_checkpoint


def top10_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per track: |top-10 under a & top-10 under b| / 10, the track itself excluded."""
    def top(x: np.ndarray) -> np.ndarray:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :10]
    ta, tb = top(a), top(b)
    return np.array([len(set(r) & set(s)) / 10 for r, s in zip(ta, tb, strict=True)])


def backbone_ms(emb: Embedder, logmel: torch.Tensor, repeats: int = 15) -> float:
    emb.backbone(logmel)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        emb.backbone(logmel)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/mir1k-dev"))
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    tracks = read_manifest(args.data / "clips.csv")
    waves = []
    for t in tracks:
        v, a = read_audio(t.vocals), read_audio(t.accompaniment)
        waves.append(v[: min(len(v), len(a))] + a[: min(len(v), len(a))])
    ckpt = default_checkpoint()
    fp32 = Embedder.from_checkpoint(ckpt, "cpu", backend="onnx", threads=2)
    int8 = Embedder.from_checkpoint(ckpt, "cpu", backend="onnx-int8", threads=2)
    a = np.concatenate([fp32.embed_many(waves[i:i + 32]) for i in range(0, len(waves), 32)])
    b = np.concatenate([int8.embed_many(waves[i:i + 32]) for i in range(0, len(waves), 32)])
    artists = np.array([t.artist for t in tracks])
    songs = np.array([t.song for t in tracks])
    cos = np.sum(a * b, axis=1)
    overlap = top10_overlap(a, b)
    logmel = fp32.features(np.random.default_rng(0).standard_normal((30, 16_000))
                           .astype(np.float32) * 0.05)
    report = {
        "tracks": len(tracks),
        "cosine": {"min": round(float(cos.min()), 5), "median": round(float(np.median(cos)), 5)},
        "top10_overlap": {"mean": round(float(overlap.mean()), 4),
                          "min": round(float(overlap.min()), 2)},
        "fp32": retrieval_metrics(a, a, artists, songs),
        "int8": retrieval_metrics(b, b, artists, songs),
        "backbone_ms_30_chunks": {"fp32": backbone_ms(fp32, logmel),
                                  "int8": backbone_ms(int8, logmel)},
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
