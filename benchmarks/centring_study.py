"""Would centring or whitening the served embedding help singer retrieval? (issue 17)

Backbone chunk embeddings of a checkpoint are pooled per track (sung chunks, as the harness
does) after one of several post-processings whose statistics come from a reference corpus the
model may have heard (never the test singers): centring on the reference mean, z-scoring, PCA
to k dimensions, PCA whitening; each with and without L2-normalising chunks before the mean.
"center_test" uses the test corpus's own mean, an upper bound a catalog could only estimate.

    python benchmarks/centring_study.py --checkpoint model/weights/cvsm-default.pt --fold ravdess \\
        --test runs/folds/ravdess/manifest.csv --reference MIR1K_DEV/clips.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

from model.audio.signal import l2_normalise, pool
from model.evaluation.data import EvalTrack, load_corpus
from model.evaluation.extract import extract
from model.evaluation.folds import get_fold
from model.evaluation.retrieval import retrieval_suite
from model.evaluation.run import Labels
from model.evaluation.systems import checkpoint_system

Transform = Callable[[np.ndarray], np.ndarray]


def chunk_embeddings(corpus: list[EvalTrack], system: object) -> dict[str, list[np.ndarray]]:
    return {s: extract(corpus, system, s).chunks for s in ("mixture", "vocals")
            if all(getattr(t, s) is not None for t in corpus)}


def tracks(chunks: list[np.ndarray], voiced: list[np.ndarray], fn: Transform,
           norm_chunks: bool) -> np.ndarray:
    """Track vectors as the harness pools them (sung chunks, mean, L2), after `fn`."""
    def prepare(c: np.ndarray) -> np.ndarray:
        return l2_normalise(fn(c)) if norm_chunks else fn(c)
    return np.stack([pool(prepare(c), v) for c, v in zip(chunks, voiced, strict=True)])


def transforms(reference: np.ndarray, test: np.ndarray) -> dict[str, Transform]:
    mu, sd = reference.mean(axis=0), reference.std(axis=0) + 1e-6
    _, s, vt = np.linalg.svd(reference - mu, full_matrices=False)
    var = s ** 2 / len(reference)
    out: dict[str, Transform] = {"raw": lambda c: c, "center_ref": lambda c: c - mu,
                                 "zscore_ref": lambda c: (c - mu) / sd,
                                 "center_test": lambda c: c - test.mean(axis=0)}
    for k in (64, 128, 256):
        out[f"pca{k}"] = lambda c, k=k: (c - mu) @ vt[:k].T
        out[f"white{k}"] = lambda c, k=k: (c - mu) @ (vt[:k].T / np.sqrt(var[:k] + 1e-3 * var[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--fold", required=True, help="A, B or ravdess")
    ap.add_argument("--test", required=True, help="manifest holding the fold's test singers")
    ap.add_argument("--reference", required=True, help="manifest of reference (heard) tracks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fold = get_fold(args.fold)
    system = checkpoint_system(args.checkpoint, device="cpu")
    test = load_corpus(args.test, artists=fold.test_singers)
    ref = load_corpus(args.reference, exclude=fold.exclude_from_training)
    t_chunks, r_chunks = chunk_embeddings(test, system), chunk_embeddings(ref, system)
    reference = np.concatenate([c[t.voiced] if t.voiced.any() else c
                                for chunks in r_chunks.values()
                                for c, t in zip(chunks, ref, strict=True)])
    test_all = np.concatenate([c for chunks in t_chunks.values() for c in chunks])
    labels, voiced = Labels.of(test), [t.voiced for t in test]
    print(f"{len(test)} test tracks, {len(reference)} reference chunks; P@1 / mAP")
    for name, fn in transforms(reference, test_all).items():
        for norm_chunks in (False, True):
            pooled = {s: tracks(c, voiced, fn, norm_chunks) for s, c in t_chunks.items()}
            res = retrieval_suite(pooled, labels.artists, labels.songs)
            cells = "  ".join(f"{k} {v['p_at_1']:.3f}/{v['map']:.3f}" for k, v in res.items())
            print(f"{name + ('+l2chunks' if norm_chunks else ''):18s} {cells}", flush=True)


if __name__ == "__main__":
    main()
