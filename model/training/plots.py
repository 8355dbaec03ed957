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
    """Train/val loss and val accuracy (with chance) against step, and a third panel with the
    distillation loss (1 - cosine to the teacher) when the run distils. The loss panel also shows
    the largest gradient norm of each log window (right axis), where a divergence starts."""
    rows = read_metrics(metrics)
    train = [r for r in rows if r.get("split") == "train"]
    val = [r for r in rows if r.get("split") == "val"]
    distils = any("kd" in r or "val_kd" in r for r in rows)
    fig, axes = plt.subplots(1, 3 if distils else 2, figsize=(16 if distils else 11, 4))
    ax_loss, ax_acc = axes[0], axes[1]
    if distils:
        _plot_kd(axes[2], train, val, title)
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train",
                     alpha=0.7)
        ax_acc.plot([r["step"] for r in train], [r["acc"] for r in train], label="train",
                    alpha=0.5)
        _plot_grad_norm(ax_loss, train)
    if val:
        ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
        ax_acc.plot([r["step"] for r in val], [r["val_acc"] for r in val], "o-", label="val")
        ax_acc.axhline(val[-1]["chance"], color="grey", ls="--", label="chance")
    ax_loss.set(xlabel="step", ylabel="loss (weighted sum)", title=f"{title} loss")
    ax_acc.set(xlabel="step", ylabel="contrastive accuracy", title=f"{title} accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _plot_grad_norm(ax: plt.Axes, train: list[dict]) -> None:
    rows = [r for r in train if "grad_norm_max" in r]
    if not rows:
        return  # metrics from before the norm was logged
    right = ax.twinx()
    right.semilogy([r["step"] for r in rows], [r["grad_norm_max"] for r in rows],
                   color="tab:red", alpha=0.35, lw=0.8)
    right.set_ylabel("largest gradient norm per log window", color="tab:red")


def _plot_kd(ax: plt.Axes, train: list[dict], val: list[dict], title: str) -> None:
    kd_train = [r for r in train if "kd" in r]
    kd_val = [r for r in val if "val_kd" in r]
    ax.plot([r["step"] for r in kd_train], [r["kd"] for r in kd_train], label="train", alpha=0.7)
    ax.plot([r["step"] for r in kd_val], [r["val_kd"] for r in kd_val], "o-", label="val")
    ax.set(xlabel="step", ylabel="1 - cosine to teacher", title=f"{title} distillation")
