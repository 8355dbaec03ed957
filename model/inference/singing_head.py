"""A learned singing detector on the model's own chunk embeddings, for separation off
(docs/design.md, Separation and singing detection).

The log-mel gate (gate.py) was trained on MIR-1K mixtures, 91 % of whose seconds are sung: on
material where half the seconds are instrumental it says "sung" to nearly everything (50 %
per-second accuracy on held-out singers). This head reads what the encoder already computed for
each second, its served embedding, so it hears the voice the way the model does: a logistic
regression over the standardised embedding, trained on MIR-1K dev mixtures and their
accompaniments alone against the stems' truth, its probabilities averaged over each second and
its neighbours (sung and instrumental passages last longer than a second). It belongs to one
model: the file names the fingerprint it was trained for, and an embedder of another model
falls back to the log-mel gate. Trained by `benchmarks/train_singing_head.py`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.weights import DEFAULT_SINGING_HEAD


@dataclass(frozen=True)
class SingingHead:
    """Logistic regression on (embedding - mean) / scale, smoothed over `smooth` seconds."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    model: str
    threshold: float = 0.5
    smooth: int = 3

    @classmethod
    def load(cls, path: str | Path = DEFAULT_SINGING_HEAD) -> SingingHead:
        d = json.loads(Path(path).read_text())
        return cls(np.float32(d["weights"]), float(d["bias"]), np.float32(d["mean"]),
                   np.float32(d["scale"]), d["model"], float(d.get("threshold", 0.5)),
                   int(d.get("smooth", 3)))

    @classmethod
    def for_model(cls, fingerprint: str, path: str | Path = DEFAULT_SINGING_HEAD
                  ) -> SingingHead | None:
        """The head trained for this model (its fingerprint's model part), or None."""
        if not Path(path).is_file():
            return None
        head = cls.load(path)
        return head if head.model == fingerprint.split("+")[0] else None

    def save(self, path: str | Path, **meta: object) -> None:
        def numbers(x: np.ndarray) -> list[float]:
            return [float(v) for v in np.float32(x)]  # exact: loads back to the same float32

        Path(path).write_text(json.dumps(
            {"weights": numbers(self.weights), "bias": self.bias, "mean": numbers(self.mean),
             "scale": numbers(self.scale), "model": self.model, "threshold": self.threshold,
             "smooth": self.smooth, **meta}, indent=1))

    @property
    def fingerprint(self) -> str:
        """Short hash of the head's numbers (vectors pooled with it differ)."""
        h = hashlib.sha256()
        for part in (self.weights, self.mean, self.scale):
            h.update(np.float32(part).tobytes())
        h.update(np.float64([self.bias, self.threshold, self.smooth]).tobytes())
        return h.hexdigest()[:8]

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """Per chunk of one track (in order): P(sung), averaged with its neighbours."""
        z = ((np.asarray(embeddings, np.float32) - self.mean) / self.scale) @ self.weights
        p = 1.0 / (1.0 + np.exp(-np.clip(z + self.bias, -50, 50)))
        if self.smooth <= 1 or len(p) < 2:
            return p
        half = self.smooth // 2
        padded = np.pad(p, half, mode="edge")
        return np.convolve(padded, np.ones(self.smooth) / self.smooth, mode="valid")

    def sung(self, embeddings: np.ndarray) -> np.ndarray:
        return self.probability(embeddings) >= self.threshold
