"""PCA whitening of the served embedding, fitted on the voices a model was trained on.

Why: the voice-LSTM's chunk vectors are unit vectors with a large common part, so cosines
between different singers sit high and close to those of one singer (RAVDESS mixtures,
bundled default: median 0.755 between singers, 0.857 within). Subtracting the mean of
heard voices and evening out the variances of the principal directions (PCA whitening, the
classic back end of speaker verification; here half-way, see `fit_whitening`) spreads
singers apart: on both singer-disjoint folds and on the RAVDESS voices it lifts every
direction's mAP (docs/results.md, "Whitening the embedding").

The transform is affine, so it is stored as one more linear head after the backbone
(`whiten_head`, weight = components / variance**power, bias = -weight @ mean): the embedder
projects each chunk and then pools, exactly as for the distillation head, and the model
fingerprint covers it, so an index built without it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA

#: The head's name in a checkpoint (`<name>_head.weight`) and the served `embedding` value.
WHITEN = "whiten"


def fit_whitening(chunks: np.ndarray, dims: int, power: float = 0.25,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """(n, d) backbone chunk vectors -> the head's weight (dims, d) and bias (dims,), float32:
    centre on the chunks' mean, rotate onto the top `dims` principal directions, and divide
    each by variance**power. power 0.5 is full PCA whitening (sklearn's `whiten=True`), 0 a
    plain centred projection; 0.25, half-way in log scale, won on every fold measured (full
    whitening lost vocals->mix on the unseen RAVDESS voices: docs/results.md, "Whitening the
    embedding")."""
    if dims < 1 or dims > min(chunks.shape):
        raise ValueError(f"whitening dims must be 1..{min(chunks.shape)}, got {dims}")
    if not 0.0 <= power <= 0.5:
        raise ValueError(f"whitening power must be in [0, 0.5], got {power}")
    pca = PCA(n_components=dims, svd_solver="full", random_state=seed)
    pca.fit(chunks.astype(np.float64))
    weight = pca.components_ / pca.explained_variance_[:, None] ** power
    bias = -weight @ pca.mean_
    return {f"{WHITEN}_head.weight": torch.from_numpy(weight.astype(np.float32)),
            f"{WHITEN}_head.bias": torch.from_numpy(bias.astype(np.float32))}


def with_whitening(ckpt: dict[str, Any], head: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A copy of a checkpoint that serves the whitened embedding through `head`."""
    model = {k: v for k, v in ckpt["model"].items() if not k.startswith(f"{WHITEN}_head.")}
    return {**ckpt, "model": {**model, **head}, "embedding": WHITEN}


def reference_chunks(corpus: list, system: object,
                     progress: Callable[[Iterable], Iterable] = iter) -> np.ndarray:
    """Backbone vectors of every sung 1 s chunk of the corpus's mixtures, and of its vocals
    where a row has separate ones (an a cappella row is its own mixture and counts once):
    the voices as a catalog and its queries hold them."""
    return reference_set(corpus, system, progress).chunks


@dataclass
class Reference:
    """The reference chunks with what label-aware back ends need (model/wccn.py): each chunk's
    singer, and which pooled track vector it belongs to, so that a back end can be scored the
    way a catalog pools (mean of a track's sung chunks) on singers held out of its fit."""

    chunks: np.ndarray   # (n, d) backbone vectors
    singers: np.ndarray  # (n,) each chunk's singer
    groups: np.ndarray   # (n,) index into `tracks`: the (track, input) a chunk came from
    tracks: list[tuple[str, str, str, str]]  # (track_id, input, singer, song) per group


def reference_set(corpus: list, system: object,
                  progress: Callable[[Iterable], Iterable] = iter) -> Reference:
    """`reference_chunks`, labelled."""
    from model.evaluation.extract import extract

    stems = [t for t in corpus
             if t.vocals is not None and not np.array_equal(t.vocals, t.mixture)]
    out, singers, groups, tracks = [], [], [], []
    for subset, source in ((corpus, "mixture"), (stems, "vocals")):
        if not subset:
            continue
        chunks = extract(subset, system, source, progress).chunks
        for c, t in zip(chunks, subset, strict=True):
            sung = c[t.voiced]
            if not len(sung):
                continue
            out.append(sung)
            singers += [t.artist] * len(sung)
            groups += [len(tracks)] * len(sung)
            tracks.append((t.track_id, source, t.artist, t.song))
    return Reference(np.concatenate(out), np.asarray(singers), np.asarray(groups), tracks)
