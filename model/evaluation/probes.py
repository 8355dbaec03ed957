"""Linear probes on frozen chunk embeddings and their scores at 1 s, 2 s, 5 s and track level.

A probe is one linear layer trained with Adam (lr 5e-4, batch 64) and early stopping on the
validation loss (the paper's recipe); a binary task uses one logistic unit. Features are
z-scored with training statistics first, which leaves a linear probe's capacity unchanged but
lets one learning rate suit 1280-d CNN outputs and 40-d MFCC statistics alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler
from torch import nn

SPANS = (1, 2, 5)


@dataclass(frozen=True)
class ProbeConfig:
    lr: float = 5e-4
    batch: int = 64
    max_epochs: int = 100
    patience: int = 5
    device: str = "cpu"


def _tensor(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=device)


def _loss_fn(n_classes: int) -> nn.Module:
    return nn.BCEWithLogitsLoss() if n_classes == 2 else nn.CrossEntropyLoss()


def _targets(y: np.ndarray, n_classes: int, device: str) -> torch.Tensor:
    t = torch.as_tensor(y, device=device)
    return t.float()[:, None] if n_classes == 2 else t.long()


@contextmanager
def _one_thread(device: str) -> Iterator[None]:
    """Probe steps are tiny matmuls: on CPU, thread hand-offs cost more than they save (one
    MIR-1K probe took 35 s with 2 threads on the loaded 2-core machine, 3.8 s with 1)."""
    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                n_classes: int, seed: int, config: ProbeConfig) -> ProbeModel:
    """Fit a linear probe; keeps the weights of the epoch with the lowest validation loss."""
    with _one_thread(config.device):
        return _train(x_train, y_train, x_val, y_val, n_classes, seed, config)


def _train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
           n_classes: int, seed: int, config: ProbeConfig) -> ProbeModel:
    torch.manual_seed(seed)
    scaler = StandardScaler().fit(x_train)
    dev = config.device
    xt, xv = _tensor(scaler.transform(x_train), dev), _tensor(scaler.transform(x_val), dev)
    yt, yv = _targets(y_train, n_classes, dev), _targets(y_val, n_classes, dev)
    layer = nn.Linear(xt.shape[1], 1 if n_classes == 2 else n_classes).to(dev)
    opt = torch.optim.Adam(layer.parameters(), lr=config.lr)
    loss_fn = _loss_fn(n_classes)
    best, best_state, waited = float("inf"), None, 0
    for _ in range(config.max_epochs):
        for idx in torch.randperm(len(xt), device=dev).split(config.batch):
            opt.zero_grad(set_to_none=True)
            loss_fn(layer(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            val_loss = float(loss_fn(layer(xv), yv))
        if val_loss < best - 1e-4:
            best, waited = val_loss, 0
            best_state = {k: v.clone() for k, v in layer.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_state is not None:
        layer.load_state_dict(best_state)
    return ProbeModel(layer.eval(), scaler, n_classes, dev)


@dataclass
class ProbeModel:
    layer: nn.Linear
    scaler: StandardScaler
    n_classes: int
    device: str

    @torch.no_grad()
    def proba(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, classes) probabilities (two columns for a binary probe)."""
        logits = self.layer(_tensor(self.scaler.transform(x), self.device))
        if self.n_classes == 2:
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1).cpu().numpy()
        return torch.softmax(logits, dim=1).cpu().numpy()


def span_probs(probs: np.ndarray, span: int | None) -> np.ndarray:
    """Mean probabilities over consecutive non-overlapping windows of `span` chunks (None: the
    whole track). A track shorter than the span counts once, over all its chunks."""
    if span is None or len(probs) <= span:
        return probs.mean(axis=0, keepdims=True)
    usable = len(probs) // span * span
    return probs[:usable].reshape(-1, span, probs.shape[1]).mean(axis=1)


def span_scores(track_probs: list[np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 at 1 s, 2 s, 5 s and track level for tracks' chunk probabilities."""
    out: dict[str, dict[str, float]] = {}
    for span in (*SPANS, None):
        preds, truth = [], []
        for probs, label in zip(track_probs, labels, strict=True):
            windows = span_probs(probs, span)
            preds.append(windows.argmax(axis=1))
            truth.append(np.full(len(windows), label))
        y_pred, y_true = np.concatenate(preds), np.concatenate(truth)
        out["track" if span is None else f"{span}s"] = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        }
    return out
