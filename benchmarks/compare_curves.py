"""Validation curves of several runs on one plot (same-budget comparisons, e.g. CVSM-AH vs
CVSM-KD on a fold): contrastive accuracy against step and against wall time.

    python benchmarks/compare_curves.py --run CVSM-AH=runs/cpuA/cvsm_ah \
        --run CVSM-KD=runs/cpuA/cvsm_kd --out docs/img/cpu_foldA_kd_vs_ah.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from model.training.plots import read_metrics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_FOLDER")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="validation on held-out singers")
    args = ap.parse_args()
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    chance = None
    for spec in args.run:
        label, _, folder = spec.partition("=")
        rows = read_metrics(Path(folder) / "metrics.jsonl")
        val = [r for r in rows if r.get("split") == "val"]
        start = rows[0]["time"] if rows else 0.0
        by_step.plot([r["step"] for r in val], [r["val_acc"] for r in val], "o-", label=label)
        by_time.plot([(r["time"] - start) / 60 for r in val], [r["val_acc"] for r in val], "o-",
                     label=label)
        chance = val[-1]["chance"] if val else chance
    for ax, xlabel in ((by_step, "step"), (by_time, "minutes")):
        if chance is not None:
            ax.axhline(chance, color="grey", ls="--", label="chance")
        ax.set(xlabel=xlabel, ylabel="contrastive accuracy", title=args.title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
