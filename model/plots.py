"""PNG plots people would rather look at than read (training curves)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_training_curves(metrics: Path, out: Path, title: str = "") -> None:
    """Train/val contrastive loss and val accuracy (with chance) against step."""
    rows = read_metrics(metrics)
    train = [r for r in rows if r.get("split") == "train"]
    val = [r for r in rows if r.get("split") == "val"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train",
                     alpha=0.7)
        ax_acc.plot([r["step"] for r in train], [r["acc"] for r in train], label="train",
                    alpha=0.5)
    if val:
        ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
        ax_acc.plot([r["step"] for r in val], [r["val_acc"] for r in val], "o-", label="val")
        ax_acc.axhline(val[-1]["chance"], color="grey", ls="--", label="chance")
    ax_loss.set(xlabel="step", ylabel="contrastive loss", title=f"{title} loss")
    ax_acc.set(xlabel="step", ylabel="contrastive accuracy", title=f"{title} accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
