"""How much does a cross-fitted calibration error depend on which singers fit the curve?

Until 2026-11-29 (commit 453e49f) `cvsm calibrate` cross-fitted the cosine -> P(same singer)
curve on one fixed halving of the held-out singers (every other singer) and reported that
split's expected calibration error; it now pools every halving
(model/evaluation/calibration.py). With 8 singers there are 35; this script scores each one
alone, for the shipped isotonic curve and for a two-parameter logistic (Platt) curve, so a
single split's ECE can be read against its spread. Pairs are built exactly as `cvsm calibrate`
builds them (mixture and vocal queries against mixtures of other songs).

    python benchmarks/calibration_splits.py --data runs/folds/ravdess/manifest.csv --fold ravdess \\
        --checkpoint model/weights/cvsm-default.pt OLD.pt
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from model.evaluation.calibration import (
    _weights,
    fit_curve,
    halving_sides,
    halvings,
    pair_table,
    reliability,
)
from model.evaluation.data import load_corpus
from model.evaluation.folds import fold_singers
from model.inference.embedder import Embedder


def predict(kind: str, scores: np.ndarray, labels: np.ndarray, train: np.ndarray,
            test: np.ndarray) -> np.ndarray:
    """P(same singer) for the test pairs from a curve fitted on the training pairs."""
    if kind == "isotonic":
        xs, ys = fit_curve(scores[train], labels[train])
        return np.interp(scores[test], xs, ys)
    fit = LogisticRegression(C=1e4).fit(scores[train, None], labels[train],
                                        sample_weight=_weights(labels[train]) * train.sum())
    return fit.predict_proba(scores[test, None])[:, 1]


def split_eces(kind: str, scores: np.ndarray, labels: np.ndarray, singer_a: np.ndarray,
               singer_b: np.ndarray) -> list[float]:
    """ECE of every halving `cvsm calibrate` pools (the first is the every-other-singer split
    it reported until commit 453e49f)."""
    out = []
    for half in halvings(np.concatenate([singer_a, singer_b]).tolist()):
        probs, truth = [], []
        for train, test in halving_sides(half, singer_a, singer_b):
            probs.append(predict(kind, scores, labels, train, test))
            truth.append(labels[test])
        out.append(reliability(np.concatenate(probs), np.concatenate(truth))["ece"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="manifest of singers the models never heard")
    ap.add_argument("--fold", default=None, help="keep this fold's test singers (e.g. ravdess)")
    ap.add_argument("--checkpoint", nargs="+", required=True)
    args = ap.parse_args()
    corpus = load_corpus(args.data, fold_singers(args.fold)[0] if args.fold else None)
    artists = [t.artist for t in corpus]
    songs = [t.song or t.track_id for t in corpus]
    report = {}
    for path in args.checkpoint:
        embedder = Embedder.from_checkpoint(path, device="cpu")
        catalog = embedder.embed_many([t.mixture for t in corpus])
        queries = {"mixture": catalog, "vocals": embedder.embed_many([t.vocals for t in corpus])}
        scores, labels, sa, sb = pair_table(queries, catalog, artists, songs)
        for kind in ("isotonic", "logistic"):
            eces = split_eces(kind, scores, labels, sa, sb)
            row = {"every_other_split": eces[0], "splits": len(eces),
                   "median": float(np.median(eces)), "min": min(eces), "max": max(eces)}
            report[f"{embedder.fingerprint} {kind}"] = row
            print(f"{embedder.fingerprint} {kind:9s} ECE: every-other-singer split {eces[0]:.3f}, "
                  f"{len(eces)} splits median {row['median']:.3f} "
                  f"[{row['min']:.3f}, {row['max']:.3f}]")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
