"""Train the vocal-activity gate (model/inference/gate.py) on MIR-1K and measure what it does to
retrieval.

    python benchmarks/train_vocal_gate.py --data /work/shared/data/mir1k-dev \
        --out model/weights/vocal-gate.json --report gate.json

Mixtures (vocals + accompaniment) are cut into the embedder's 1 s chunks; a chunk is "sung"
when >= 25% of its 20 ms activity frames are (the harness's rule). A logistic regression on
per-band log-mel mean/std is trained on some singers and scored on held-out singers (accuracy,
recall of sung chunks, share of chunks skipped). Then the bundled model embeds every mixture
chunk once, and mix->mix retrieval (the evaluation harness's P@1/mAP) is computed with the
service's plain sound mask, with the gate, and with the ground-truth labels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model.audio.signal import chunk, pool, sound_mask
from model.data.manifest import read_activity, read_manifest
from model.evaluation.data import activity_chunks, load_track
from model.evaluation.retrieval import retrieval_metrics
from model.inference.embedder import Embedder
from model.inference.gate import VocalGate, chunk_features
from model.weights import default_checkpoint

#: Gate-test singers (two female, two male), never seen by the gate's regression.
HELD_OUT = ("Ani", "ariel", "bobon", "fdps")


def load(data: Path, embedder: Embedder) -> list[dict]:
    """Per clip: chunks' log-mel features, sung labels, sound mask and backbone embeddings."""
    clips = []
    for track in read_manifest(data / "clips.csv"):
        t = load_track(track)
        chunks = chunk(t.mixture)
        logmel = embedder.features(chunks)
        labels = activity_chunks(read_activity(track.vocal_activity), len(chunks))
        clips.append({"artist": t.artist, "song": t.song, "labels": labels,
                      "x": chunk_features(logmel.numpy()), "logmel": logmel.numpy(),
                      "sound": sound_mask(chunks), "emb": embedder.backbone(logmel)})
    return clips


def fit(clips: list[dict], c: float) -> VocalGate:
    """Logistic regression with the scaler folded into one weight vector."""
    x = np.concatenate([k["x"] for k in clips])
    y = np.concatenate([k["labels"] for k in clips])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(x, y)
    scaler, lr = model[0], model[1]
    weights = lr.coef_[0] / scaler.scale_
    bias = float(lr.intercept_[0] - np.dot(weights, scaler.mean_))
    return VocalGate(weights.astype(np.float32), bias)


def gate_scores(gate: VocalGate, clips: list[dict]) -> dict[str, float]:
    y = np.concatenate([k["labels"] for k in clips])
    keep = np.concatenate([gate.select(k["logmel"], k["sound"]) for k in clips])
    pred = np.concatenate([gate.probability(k["logmel"]) >= gate.threshold for k in clips])
    return {"chunks": int(len(y)), "sung_share": round(float(y.mean()), 4),
            "accuracy": round(accuracy_score(y, pred), 4),
            "sung_recall": round(recall_score(y, pred), 4),
            "unsung_rejected": round(float((~pred[~y]).mean()), 4),
            "kept_share": round(float(keep.mean()), 4)}


def retrieval(clips: list[dict], masks: list[np.ndarray]) -> dict[str, float]:
    vectors = np.stack([pool(k["emb"], m) for k, m in zip(clips, masks, strict=True)])
    out = retrieval_metrics(vectors, vectors, np.array([k["artist"] for k in clips]),
                            np.array([k["song"] for k in clips]))
    return {key: round(v, 4) if isinstance(v, float) else v for key, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/mir1k-dev"))
    p.add_argument("--out", type=Path, default=Path("model/weights/vocal-gate.json"))
    p.add_argument("--report", type=Path)
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="sung probability to keep a chunk (low: keep recall of singing high)")
    args = p.parse_args()
    torch.set_num_threads(2)
    embedder = Embedder.from_checkpoint(default_checkpoint(), "cpu", backend="auto")
    clips = load(args.data, embedder)
    train = [k for k in clips if k["artist"] not in HELD_OUT]
    test = [k for k in clips if k["artist"] in HELD_OUT]
    gate = fit(train, args.c)
    gate = VocalGate(gate.weights, gate.bias, args.threshold)
    report = {"held_out_singers": list(HELD_OUT), "c": args.c, "threshold": args.threshold,
              "gate_train": gate_scores(gate, train), "gate_held_out": gate_scores(gate, test)}
    for name, subset in (("all", clips), ("held_out", test)):
        report[f"retrieval_mix_mix_{name}"] = {
            "sound_mask": retrieval(subset, [k["sound"] for k in subset]),
            "gate": retrieval(subset, [gate.select(k["logmel"], k["sound"]) for k in subset]),
            "true_labels": retrieval(subset, [k["labels"] for k in subset])}
    for t in (0.3, 0.7, 0.9):  # what stricter thresholds would skip, and cost
        other = VocalGate(gate.weights, gate.bias, t)
        report[f"threshold_{t}"] = {"gate_held_out": gate_scores(other, test), "retrieval_all":
                                    retrieval(clips, [other.select(k["logmel"], k["sound"])
                                                      for k in clips])}
    gate.save(args.out, trained_on="MIR-1K dev mixtures, singers minus " + ", ".join(HELD_OUT),
              features="per-band mean and std of the 98x64 log-mel of a 1 s chunk",
              script="benchmarks/train_vocal_gate.py")
    text = json.dumps(report, indent=1)
    print(text)
    if args.report:
        args.report.write_text(text)


if __name__ == "__main__":
    main()
