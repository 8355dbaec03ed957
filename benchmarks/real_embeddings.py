"""Embed MIR-1K mixtures with the bundled model, for fitting realistic benchmark catalogs.

    python benchmarks/real_embeddings.py --out runs/mir1k-windows.npy

Every dev clip's mixture (vocals + accompaniment) is cut into 4 s windows with a 2 s hop and
each window is embedded as a track (the service's pooling: mean of the 1 s chunk embeddings
with sound, L2-normalised). ~2,800 vectors from 746 clips: enough for a full-rank 1280 x 1280
covariance, which `faiss_search.py --like` samples million-vector catalogs from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.data.manifest import read_manifest
from model.evaluation.data import read_audio
from model.inference.embedder import Embedder
from model.weights import default_checkpoint

WINDOW, HOP = 4 * 16_000, 2 * 16_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/mir1k-dev"))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    embedder = Embedder.from_checkpoint(default_checkpoint(), "cpu", backend="auto")
    windows, singers = [], []
    for track in tqdm(read_manifest(args.data / "clips.csv"), desc="clips", unit="clip"):
        v, a = read_audio(track.vocals), read_audio(track.accompaniment)
        mix = v[: min(len(v), len(a))] + a[: min(len(v), len(a))]
        for start in range(0, max(1, len(mix) - WINDOW + 1), HOP):
            windows.append(mix[start:start + WINDOW])
            singers.append(track.artist)
    vectors = np.concatenate([embedder.embed_many(windows[i:i + 64])
                              for i in tqdm(range(0, len(windows), 64), desc="embed")])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, vectors.astype(np.float32))
    print(f"{len(vectors)} window embeddings from {len(set(singers))} singers -> {args.out}")


if __name__ == "__main__":
    main()
