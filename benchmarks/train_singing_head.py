"""Train the learned singing detector (model/inference/singing_head.py) for the bundled model
and score it per second on singers its regression never saw.

    python benchmarks/train_singing_head.py --data MIR1K_DEV/clips.csv \
        --out model/weights/singing-head.json --report docs/results/singing-head-2026-12-08.json

Material: every MIR-1K dev clip's mixture (truth per second from the stems' activity labels)
and its accompaniment alone (every second instrumental), so about half the seconds are sung,
as in a song with intros and solos. Features: the bundled model's served embedding of each
second with sound, as the embedder computes it. Held-out figures: the regression fitted on
fold A's singers and scored on fold B's, and the other way round (the encoder itself heard all
13 singers in its own training); the shipped head is then fitted on all of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from model.audio.signal import central, chunk, sound_mask
from model.evaluation.data import load_corpus
from model.evaluation.folds import MIR1K_A
from model.inference.embedder import Embedder
from model.inference.selection import cpu_signature
from model.inference.singing_head import SingingHead
from model.weights import DEFAULT_CHECKPOINT

C = 0.1  # L2 strength of the regression (0.1 and 1.0 scored alike held out)


def material(embedder: Embedder, data: Path) -> list[dict]:
    """Per track (mixture, then accompaniment alone): embeddings of its sound chunks, truth,
    fold."""
    rows = []
    for clip in load_corpus(data):
        fold = "A" if clip.artist in MIR1K_A else "B"
        for wave, truth in ((clip.mixture, clip.voiced),
                            (clip.mixture - clip.vocals, np.zeros(len(clip.voiced), bool))):
            chunks = chunk(wave, embedder.model.context)
            sound = sound_mask(central(chunks, embedder.model.context))
            emb = embedder.embed_chunks(chunks[sound])
            rows.append({"emb": emb, "truth": truth[sound], "fold": fold})
    return rows


def fit(rows: list[dict], model: str) -> SingingHead:
    x = np.concatenate([r["emb"] for r in rows])
    y = np.concatenate([r["truth"] for r in rows])
    scaler = StandardScaler().fit(x)
    reg = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(x), y)
    return SingingHead(np.float32(reg.coef_[0]), float(reg.intercept_[0]),
                       np.float32(scaler.mean_), np.float32(scaler.scale_), model)


def score(head: SingingHead, rows: list[dict]) -> dict:
    pred = np.concatenate([head.sung(r["emb"]) for r in rows])
    truth = np.concatenate([r["truth"] for r in rows])
    return {"accuracy": round(float((pred == truth).mean()), 4),
            "balanced_accuracy": round(float(0.5 * (pred[truth].mean()
                                                    + (~pred[~truth]).mean())), 4),
            "seconds": int(len(truth)), "sung_share": round(float(truth.mean()), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="MIR-1K dev clips.csv")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--report", type=Path)
    args = p.parse_args()
    embedder = Embedder.from_checkpoint(DEFAULT_CHECKPOINT, "cpu", backend="onnx")
    rows = material(embedder, args.data)
    report = {"cpu": cpu_signature(), "model": embedder.fingerprint, "C": C,
              "command": "python benchmarks/train_singing_head.py --data MIR1K_DEV/clips.csv "
                         "--out model/weights/singing-head.json --report REPORT"}
    for test in "AB":
        head = fit([r for r in rows if r["fold"] != test], embedder.fingerprint)
        held = [r for r in rows if r["fold"] == test]
        report[f"fold {test} held out"] = {"smoothed": score(head, held), "per second alone":
                                           score(SingingHead(**{**head.__dict__, "smooth": 1}),
                                                 held)}
        print(test, report[f"fold {test} held out"], flush=True)
    head = fit(rows, embedder.fingerprint)
    head.save(args.out, trained_on="MIR-1K dev, 13 singers: mixtures and accompaniments",
              script="benchmarks/train_singing_head.py")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
