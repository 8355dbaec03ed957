"""How much whitening, and how many dimensions? (the grid behind `cvsm whiten`'s defaults)

The reference chunks are the model's own training voices (`model.whitening.reference_chunks`,
as `cvsm whiten` takes them); the test vectors are the track vectors `cvsm evaluate` scored
(its tracks.npz, plain backbone). The transform is applied to those pooled, L2-normalised
track vectors, an approximation of `cvsm whiten` (which transforms each chunk, then pools):
a grid over power and dims costs seconds this way. Settings found here were then checked
through the real path (`cvsm whiten` + `cvsm evaluate`, docs/results.md).

    python benchmarks/whitening_study.py --checkpoint runs/cos1/A/last.pt \\
        --data MIR1K_DEV/clips.csv --data VOICES/clips.csv \\
        runs/eval/cos1_A/tracks.npz runs/eval/cos1_ravA/tracks.npz
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model import checkpoint as ckpt_io
from model.audio.signal import l2_normalise
from model.evaluation.data import load_corpus
from model.evaluation.retrieval import retrieval_suite
from model.evaluation.systems import checkpoint_system
from model.whitening import WHITEN, fit_whitening, reference_set

POWERS = (0.0, 0.25, 0.5)
DIMS = (32, 64, 128, 256)


def reference(checkpoint: Path, manifests: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The model's training voices' sung chunks (as `cvsm whiten` takes them) and their
    singers."""
    heard = ckpt_io.load(checkpoint)["train_artists"]
    corpus = []
    for manifest in manifests:
        try:
            corpus += load_corpus(manifest, heard)
        except ValueError:  # no training singer in this manifest
            pass
    system = checkpoint_system(checkpoint, "cpu", embedding="backbone")
    ref = reference_set(corpus, system)
    return ref.chunks, ref.singers


def study_args(doc: str) -> argparse.Namespace:
    """The arguments of a back-end study: a model, its training manifests, tracks.npz files."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("vectors", type=Path, nargs="+", help="tracks.npz of `cvsm evaluate`")
    torch.set_num_threads(1)
    return ap.parse_args()


def main() -> None:
    args = study_args(__doc__)
    ref, _ = reference(args.checkpoint, args.data)
    heads = {(power, k): fit_whitening(ref, k, power) for power in POWERS for k in DIMS}
    mean = ref.mean(axis=0)
    print(f"{len(ref)} reference chunks; mAP mix->mix / vocals->mix / vocals->vocals")
    cells = {"raw": lambda x: x, "centred": lambda x: x - mean}
    for (power, k), head in heads.items():
        w, b = (head[f"{WHITEN}_head.{part}"].numpy() for part in ("weight", "bias"))
        cells[f"power {power} dims {k}"] = lambda x, w=w, b=b: x @ w.T + b
    score_transforms(args.vectors, cells)


def score_transforms(vectors: list[Path], cells: dict[str, Callable[[np.ndarray], np.ndarray]],
                     width: int = 22) -> None:
    """Print mAP in the three directions for each transform of each tracks.npz."""
    for path in vectors:
        with np.load(path) as z:
            v = dict(z)
        for name, fn in cells.items():
            res = retrieval_suite({s: l2_normalise(fn(v[s])) for s in ("mixture", "vocals")},
                                  v["artists"], v["songs"])
            print(f"{path.parent.name:12s} {name:{width}s} "
                  + " / ".join(f"{r['map']:.4f}" for r in res.values()), flush=True)


if __name__ == "__main__":
    main()
