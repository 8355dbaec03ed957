"""A cheap vocal-activity gate: skip the backbone on 1 s chunks that hold no singing.

The track embedding averages sung chunks only (docs/design.md), so an instrumental chunk costs a
full backbone pass for nothing, or worse, pulls the mean towards the accompaniment. The gate is
a logistic regression on per-chunk log-mel statistics (mean and standard deviation of each of
the 64 bands, 128 numbers) that the front end has already computed, so it costs a dot product
per chunk. It was trained on MIR-1K's per-frame vocal labels by
`benchmarks/train_vocal_gate.py`; the weights ship as a small JSON file in model/weights/.
A track never loses all its chunks: when none passes, its most likely sung chunk is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.weights import DEFAULT_GATE


def chunk_features(logmel: np.ndarray) -> np.ndarray:
    """(n, frames, mels) log-mel -> (n, 2 * mels): per-band mean and standard deviation."""
    logmel = np.asarray(logmel, dtype=np.float32)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)], axis=1)


@dataclass(frozen=True)
class VocalGate:
    """Linear model on `chunk_features`; `threshold` applies to the sung probability."""

    weights: np.ndarray
    bias: float
    threshold: float = 0.5

    @classmethod
    def load(cls, path: str | Path = DEFAULT_GATE) -> VocalGate:
        data = json.loads(Path(path).read_text())
        return cls(np.asarray(data["weights"], dtype=np.float32), float(data["bias"]),
                   float(data.get("threshold", 0.5)))

    def save(self, path: str | Path, **meta: object) -> None:
        Path(path).write_text(json.dumps({"weights": [round(float(w), 7) for w in self.weights],
                                          "bias": float(self.bias),
                                          "threshold": self.threshold, **meta}, indent=1))

    @property
    def fingerprint(self) -> str:
        """Short hash of the gate's numbers: gated vectors differ from ungated ones."""
        digest = hashlib.sha256(self.weights.astype(np.float32).tobytes())
        digest.update(np.float64([self.bias, self.threshold]).tobytes())
        return digest.hexdigest()[:8]

    def probability(self, logmel: np.ndarray) -> np.ndarray:
        """Per-chunk probability of singing."""
        z = chunk_features(logmel) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def select(self, logmel: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        """Mask of chunks to embed: candidates (e.g. chunks with sound) that look sung; never
        empty, the best-scoring candidate is kept when none passes."""
        prob = self.probability(logmel)
        cand = np.ones(len(prob), bool) if candidates is None else np.asarray(candidates, bool)
        if not cand.any():
            cand = np.ones(len(prob), bool)
        mask = cand & (prob >= self.threshold)
        if not mask.any() and len(prob):
            mask[np.argmax(np.where(cand, prob, -np.inf))] = True
        return mask
