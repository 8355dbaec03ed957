"""How should a track's chunk vectors be pooled? (mean vs mean of unit vectors, ...)

The served track vector is the L2-normalised mean of its sung chunks' vectors. After a
whitening head the chunks no longer have unit length, so a few far-out chunks can steer the
mean; Resemblyzer's `embed_utterance` instead averages unit partial embeddings. This study
embeds a fold's chunks once through a model file and scores each pooling on the same vectors.

    python benchmarks/pooling_study.py --checkpoint runs/white/long1_A.pt \\
        --data MIR1K_DEV/clips.csv --fold A
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model.audio.signal import l2_normalise, pool
from model.evaluation.data import load_corpus
from model.evaluation.extract import extract
from model.evaluation.folds import fold_singers
from model.evaluation.retrieval import retrieval_suite
from model.evaluation.systems import checkpoint_system


def unit_mean(chunks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of unit chunk vectors (Resemblyzer's utterance pooling)."""
    return pool(l2_normalise(chunks), mask)


def trimmed_mean(chunks: np.ndarray, mask: np.ndarray, keep: float = 0.8) -> np.ndarray:
    """Mean of the sung chunks closest (cosine) to their plain mean: drops outliers."""
    sel = chunks[mask] if mask.any() else chunks
    centre = pool(sel)
    cos = l2_normalise(sel) @ centre
    n = max(1, int(round(keep * len(sel))))
    return pool(sel[np.argsort(-cos)[:n]])


POOLINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean (served)": pool, "mean of unit chunks": unit_mean, "trimmed mean 80%": trimmed_mean,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--fold", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    corpus = load_corpus(args.data, fold_singers(args.fold)[0])
    system = checkpoint_system(args.checkpoint, "cpu")
    chunks = {s: extract(corpus, system, s).chunks for s in ("mixture", "vocals")}
    artists = np.array([t.artist for t in corpus])
    songs = np.array([t.song for t in corpus])
    print(f"{args.checkpoint} fold {args.fold}: mAP mix->mix / vocals->mix / vocals->vocals")
    for name, fn in POOLINGS.items():
        tracks = {s: np.stack([fn(c, t.voiced) for c, t in zip(per, corpus, strict=True)])
                  for s, per in chunks.items()}
        res = retrieval_suite(tracks, artists, songs)
        print(f"  {name:22s} " + " / ".join(f"{r['map']:.4f}" for r in res.values()), flush=True)


if __name__ == "__main__":
    main()
