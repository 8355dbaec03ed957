"""Within-class covariance normalisation (WCCN) after the PCA whitening, and its choice on
singers held out of the fit.

Why: PCA whitening (model/whitening.py) evens out every direction in which chunks vary,
including those in which one singer's chunks vary: the band behind the voice, the song, the
pitch. WCCN, the classic speaker-verification back end, also uses the singers' labels: it
shrinks exactly the directions in which one heard singer's mixtures and vocals differ, so
accompaniment counts less. The result is still one affine map, stored as the same `whiten`
head, so serving, fast paths and fingerprints are untouched.

Whether it helps depends on the model and the voices, and a setting picked on the test folds
proves nothing (docs/results.md, "Back ends that use the singers' labels"). `choose_wccn`
therefore decides on the reference voices alone: fit on half of the training singers, score
retrieval on the other half the way a catalog pools, swap, repeat over a few random halvings,
and keep the best candidate on average (plain PCA included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.audio.signal import l2_normalise
from model.evaluation.retrieval import retrieval_suite
from model.whitening import WHITEN, Reference, fit_whitening


@dataclass(frozen=True)
class WCCN:
    """Within-singer covariance raised to -power, shrunk towards its mean eigenvalue by
    `shrink` (0 keeps it as measured; 1 makes WCCN a mere rescaling)."""

    power: float
    shrink: float

    def __post_init__(self) -> None:
        if not 0.0 < self.power <= 0.5:
            raise ValueError(f"WCCN power must be in (0, 0.5], got {self.power}")
        if not 0.0 <= self.shrink <= 1.0:
            raise ValueError(f"WCCN shrink must be in [0, 1], got {self.shrink}")

    def __str__(self) -> str:
        return f"wccn {self.power:g}:{self.shrink:g}"


#: The settings `choose_wccn` weighs against plain PCA (None): the grid of
#: benchmarks/backend_study.py.
CANDIDATES: tuple[WCCN | None, ...] = (None, WCCN(0.25, 0.5), WCCN(0.25, 0.1),
                                       WCCN(0.5, 0.5), WCCN(0.5, 0.1))


def fit_backend(chunks: np.ndarray, singers: np.ndarray, dims: int, power: float = 0.25,
                wccn: WCCN | None = None) -> dict[str, torch.Tensor]:
    """The `whiten` head: PCA whitening (`fit_whitening`), then, if `wccn` is given, the
    within-singer covariance of the whitened chunks normalised away, composed into one
    (dims, d) weight and (dims,) bias."""
    head = fit_whitening(chunks, dims, power)
    if wccn is None:
        return head
    w, b = (head[f"{WHITEN}_head.{p}"].numpy().astype(np.float64) for p in ("weight", "bias"))
    z = chunks.astype(np.float64) @ w.T + b
    m = _wccn_matrix(z, np.asarray(singers), wccn)
    return {f"{WHITEN}_head.weight": torch.from_numpy((m @ w).astype(np.float32)),
            f"{WHITEN}_head.bias": torch.from_numpy((m @ b).astype(np.float32))}


def _wccn_matrix(z: np.ndarray, singers: np.ndarray, wccn: WCCN) -> np.ndarray:
    """Symmetric (dims, dims) within-singer covariance ** -power of the rows of z."""
    names, index = np.unique(singers, return_inverse=True)
    if len(names) < 2:
        raise ValueError("WCCN needs the chunks of at least two singers")
    means = np.stack([z[index == k].mean(axis=0) for k in range(len(names))])
    within = z - means[index]
    cov = within.T @ within / len(z)
    cov = (1 - wccn.shrink) * cov + wccn.shrink * np.trace(cov) / len(cov) * np.eye(len(cov))
    vals, vecs = np.linalg.eigh(cov)
    return vecs @ np.diag(np.maximum(vals, 1e-12) ** -wccn.power) @ vecs.T


#: Fewest singers per half for `choose_wccn` to weigh WCCN at all.
MIN_HALF = 3
#: Random halvings of the training singers that `choose_wccn` averages over.
SPLITS = 4


@dataclass
class Choice:
    """What `choose_wccn` found: the winner and every candidate's held-out scores."""

    best: WCCN | None
    scores: dict[str, dict[str, float]]  # candidate -> direction (and "mean") -> mAP; {}: too
    #                                      few singers or chunks to choose
    halves: tuple[list[str], list[str]]  # the first halving (of `SPLITS`)


def split_singers(ref: Reference, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two halves of the reference singers, balanced between singers with separate vocal stems
    (karaoke rows) and a cappella ones, so each half holds both kinds of catalog."""
    stems = {singer for _, source, singer, _ in ref.tracks if source == "vocals"}
    halves: tuple[list[str], list[str]] = ([], [])
    rng = np.random.default_rng(seed)
    for kind in (sorted(stems), sorted(set(ref.singers) - stems)):
        for i, singer in enumerate(rng.permutation(kind)):
            halves[i % 2].append(str(singer))
    return sorted(halves[0]), sorted(halves[1])


def track_means(ref: Reference) -> np.ndarray:
    """(groups, d) mean backbone vector of each (track, input): computed once, since the head
    is affine and the mean of transformed chunks is the transformed mean."""
    sums = np.zeros((len(ref.tracks), ref.chunks.shape[1]))
    np.add.at(sums, ref.groups, ref.chunks)
    return sums / np.bincount(ref.groups, minlength=len(ref.tracks))[:, None]


def held_out_map(ref: Reference, means: np.ndarray, fit: list[str], test: list[str], dims: int,
                 power: float, wccn: WCCN | None) -> dict[str, float]:
    """mAP in every direction on the `test` singers' tracks of a back end fitted on the chunks
    of the `fit` singers; each track vector is the mean of its sung chunks (`means`, from
    `track_means`), as served."""
    rows = np.isin(ref.singers, fit)
    head = fit_backend(ref.chunks[rows], ref.singers[rows], dims, power, wccn)
    w, b = (head[f"{WHITEN}_head.{p}"].numpy() for p in ("weight", "bias"))
    by_track: dict[str, dict[str, object]] = {}
    for g, (track_id, source, singer, song) in enumerate(ref.tracks):
        if singer in test:
            by_track.setdefault(track_id, {"singer": singer, "song": song})[source] = (
                means[g] @ w.T + b)
    ids = sorted(by_track)
    mix = np.stack([by_track[i]["mixture"] for i in ids])
    voc = np.stack([by_track[i].get("vocals", by_track[i]["mixture"]) for i in ids])
    suite = retrieval_suite({"mixture": l2_normalise(mix), "vocals": l2_normalise(voc)},
                            np.asarray([by_track[i]["singer"] for i in ids]),
                            np.asarray([by_track[i]["song"] for i in ids]))
    scores = {name: r["map"] for name, r in suite.items()}
    return {**scores, "mean": float(np.nanmean(list(scores.values())))}


def choose_wccn(ref: Reference, dims: int, power: float = 0.25,
                candidates: tuple[WCCN | None, ...] = CANDIDATES, splits: int = SPLITS) -> Choice:
    """The candidate with the best mean held-out mAP over every direction, averaged over
    `splits` random halvings of the training singers, each scored both ways (fit on one half,
    score the other, and back). One halving is not enough: on a seed-2 fold model, four
    halvings picked three different winners (docs/results.md, stop 33). Plain PCA wins ties,
    as it needs no labels, and is kept without scoring when a half holds fewer than `MIN_HALF`
    singers (no retrieval to score on, no within-singer covariance to fit) or no more chunks
    than `dims`."""
    halvings = [split_singers(ref, seed) for seed in range(splits)]
    scores: dict[str, dict[str, float]] = {}
    if any(min(len(h) for h in halves) < MIN_HALF
           or min(np.isin(ref.singers, h).sum() for h in halves) <= dims for halves in halvings):
        return Choice(None, scores, halvings[0])
    means = track_means(ref)
    for cand in candidates:
        runs = [held_out_map(ref, means, fit, test, dims, power, cand)
                for halves in halvings for fit, test in (halves, halves[::-1])]
        scores[str(cand or "pca only")] = {k: float(np.mean([r[k] for r in runs]))
                                           for k in runs[0]}
    best = max(candidates, key=lambda c: (scores[str(c or "pca only")]["mean"], c is None))
    return Choice(best, scores, halvings[0])
