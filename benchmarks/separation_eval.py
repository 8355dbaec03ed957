"""Singing detection per second, and whole songs with instrumental sections, with and without
vocal separation (docs/results.md, "Vocal separation").

    python benchmarks/separation_eval.py --data MIR1K_DEV/clips.csv [--shares 0 0.5] \
        --out docs/results/separation-2026-12-08.json

1. Detection: every MIR-1K dev clip as it is (its mixture, the stems' per-second truth) and
   its accompaniment alone (every second instrumental), so about half the seconds are sung.
   The separation detector's two thresholds are chosen on one fold's singers and scored on the
   other's (model/separation/singing.py); the log-mel vocal gate (model/inference/gate.py,
   today's detector with separation off) is scored at its shipped threshold.
2. Whole songs (model/evaluation/songs.py) at 0 % and 50 % instrumental time, mix->mix, with
   the bundled model served as `cvsm serve` does (every second with sound), with separation
   (sung seconds by the detector, mixture and voice vectors joined), and with the stems'
   perfect mask. The bundled model was trained on these singers: the figures show what
   instrumental sections cost and what separation gives back, not quality on unseen voices.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from model.audio.features import LogMel
from model.audio.signal import chunk
from model.evaluation.data import load_corpus
from model.evaluation.folds import MIR1K_A, MIR1K_B
from model.evaluation.songs import SongScorer, assemble, score_songs
from model.inference.embedder import Embedder
from model.inference.gate import VocalGate
from model.inference.selection import cpu_signature
from model.separation.runtime import load_separator
from model.separation.singing import SingingDetector
from model.weights import DEFAULT_CHECKPOINT

SHARE_GRID = np.arange(-30.0, 1.0, 1.0)
FLOOR_GRID = (-80.0, -40.0, -30.0, -25.0, -20.0)


def detection(corpus: list, separator, batch: int = 16) -> dict:
    """Per-second accuracy of both detectors on held-out fold singers."""
    fold = {a: "A" for a in MIR1K_A} | {a: "B" for a in MIR1K_B}
    inputs, truth, folds = [], [], []
    for t in corpus:
        inputs += [t.mixture, t.mixture - t.vocals]
        truth += [t.voiced, np.zeros(len(t.voiced), bool)]
        folds += [fold[t.artist]] * 2
    voices = []
    for i in range(0, len(inputs), batch):
        voices += separator.vocals(inputs[i:i + batch])
    scores = [SingingDetector().scores(w, v) for w, v in zip(inputs, voices, strict=True)]
    gate, logmel = VocalGate.load(), LogMel()
    with torch.inference_mode():
        gated = [gate.probability(logmel(torch.from_numpy(chunk(w))).numpy()) >= gate.threshold
                 for w in inputs]
    folds = np.array(folds)

    def flags(share: float, floor: float, idx: np.ndarray) -> np.ndarray:
        return np.concatenate([(scores[i][0] >= share) & (scores[i][1] >= floor) for i in idx])

    def rates(pred: np.ndarray, idx: np.ndarray) -> dict:
        t = np.concatenate([truth[i] for i in idx])
        return {"accuracy": round(float((pred == t).mean()), 4),
                "balanced_accuracy": round(float(0.5 * (pred[t].mean() + (~pred[~t]).mean())), 4),
                "seconds": int(len(t)), "sung_share": round(float(t.mean()), 3)}

    out = {}
    for test in "AB":
        train, held = np.where(folds != test)[0], np.where(folds == test)[0]
        t_train = np.concatenate([truth[i] for i in train])
        share, floor = max(((s, f) for s in SHARE_GRID for f in FLOOR_GRID),
                           key=lambda g: (flags(*g, train) == t_train).mean())
        out[f"fold {test}"] = {
            "separation": {"share_db": float(share), "floor_db": float(floor),
                           **rates(flags(share, floor, held), held)},
            "separation, shipped thresholds": rates(
                flags(SingingDetector.share_db, SingingDetector.floor_db, held), held),
            "log-mel gate": rates(np.concatenate([gated[i] for i in held]), held)}
    return out


def songs(corpus: list, shares: list[float]) -> dict:
    """Whole-song mix->mix retrieval, served without and with separation, and the ceiling."""
    plain = Embedder.from_checkpoint(DEFAULT_CHECKPOINT, "cpu", backend="onnx")
    separated = Embedder.from_checkpoint(DEFAULT_CHECKPOINT, "cpu", backend="onnx",
                                         separation=True)
    out: dict = {}
    for share in shares:
        tracks = assemble(corpus, share)
        for name, emb in (("separation off", plain), ("separation on", separated)):
            start = time.perf_counter()
            res = score_songs(tracks, SongScorer(emb.embed_many), sources=("mixture",))
            out.setdefault(f"{share:g}", {})[name] = {
                "served": res["served"]["mix->mix"],
                "perfect_mask": res["perfect_mask"]["mix->mix"],
                "songs": res["songs"], "minutes": res["minutes"],
                "seconds": round(time.perf_counter() - start, 1)}
            print(share, name, out[f"{share:g}"][name], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="MIR-1K dev clips.csv")
    p.add_argument("--shares", type=float, nargs="*", default=[0.0, 0.5],
                   help="instrumental shares of the whole-song part (none: detection only)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    corpus = load_corpus(args.data)
    result = {"cpu": cpu_signature(), "command": "python benchmarks/separation_eval.py "
              "--data MIR1K_DEV/clips.csv", "data": "MIR-1K dev, all 13 singers"}
    result["detection"] = detection(corpus, load_separator("cpu", "onnx"))
    print(json.dumps(result["detection"], indent=1), flush=True)
    if args.shares:
        result["songs_seen_singers"] = songs(corpus, args.shares)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
