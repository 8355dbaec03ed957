"""Which linear back end after the backbone? PCA whitening (what `cvsm whiten` ships) against
back ends that also use the training singers' labels: within-class covariance normalisation
(WCCN) and LDA, the classic speaker-verification back ends.

Why labels may help: PCA evens out every direction in which chunks vary, including those in
which one singer's chunks vary (the band behind them, the song, the pitch). WCCN shrinks
precisely the directions in which a heard singer's mixtures and vocals differ from each other,
so accompaniment counts less. The reference is each model's own training voices (mixtures and
vocals); the test vectors are `cvsm evaluate`'s pooled track vectors (tracks.npz, plain
backbone), as in benchmarks/whitening_study.py.

    python benchmarks/backend_study.py --checkpoint runs/long/A1/last.pt \\
        --data MIR1K_DEV/clips.csv --data VOICES/clips.csv runs/eval/long1_A/last/tracks.npz
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from whitening_study import reference, score_transforms, study_args  # benchmarks/ on path

from model.wccn import WCCN, fit_backend
from model.whitening import WHITEN, fit_whitening

Transform = Callable[[np.ndarray], np.ndarray]


def wccn(x: np.ndarray, y: np.ndarray, dims: int, power: float, pca_power: float,
         shrink: float) -> Transform:
    """PCA to `dims` (variance**pca_power evened out), then WCCN (model/wccn.py)."""
    head = fit_backend(x, y, dims, pca_power, WCCN(power, shrink))
    w, b = (head[f"{WHITEN}_head.{p}"].numpy() for p in ("weight", "bias"))
    return lambda v: v @ w.T + b


def lda(x: np.ndarray, y: np.ndarray) -> Transform:
    model = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, y)
    return model.transform


def pca(x: np.ndarray, dims: int, power: float) -> Transform:
    head = fit_whitening(x, dims, power)
    w, b = (head[f"{WHITEN}_head.{p}"].numpy() for p in ("weight", "bias"))
    return lambda v: v @ w.T + b


def main() -> None:
    args = study_args(__doc__)
    x, y = reference(args.checkpoint, args.data)
    cells: dict[str, Transform] = {"none": lambda v: v,
                                   "pca power 0.25, 128 d (shipped)": pca(x, 128, 0.25)}
    for power in (0.25, 0.5):
        for shrink in (0.1, 0.5):
            for pca_power in (0.0, 0.25):
                cells[f"wccn {power} shrink {shrink} after pca {pca_power}"] = wccn(
                    x, y, 128, power, pca_power, shrink)
    cells["lda (shrinkage auto)"] = lda(x, y)
    print(f"{len(x)} reference chunks of {len(set(y))} singers; "
          "mAP mix->mix / vocals->mix / vocals->vocals")
    score_transforms(args.vectors, cells, width=40)

if __name__ == "__main__":
    main()
