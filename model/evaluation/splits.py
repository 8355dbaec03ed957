"""Seeded train/validation/test splits of track indices for the probes.

Artist ID splits tracks 80/10/10 within each artist. sklearn's stratified splitters need every
class at least twice in each part, which small corpora (3 tracks per singer) break, so the split
is done per artist here. Gender ID holds out whole singers (singer-disjoint), per gender.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Track indices; `val` may be empty (the probe then validates on a slice of train)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _part_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    if n >= 3:
        return max(1, round(val * n)), max(1, round(test * n))
    return 0, (1 if n == 2 else 0)


def artist_split(artists: np.ndarray, seed: int, val: float = 0.1, test: float = 0.1) -> Split:
    """80/10/10 of each artist's tracks (at least one test track when the artist has two)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for artist in sorted(set(artists)):
        idx = rng.permutation(np.flatnonzero(artists == artist))
        n_val, n_test = _part_sizes(len(idx), val, test)
        parts["test"] += idx[:n_test].tolist()
        parts["val"] += idx[n_test:n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val:].tolist()
    return Split(*(np.array(sorted(parts[k]), dtype=int) for k in ("train", "val", "test")))


def reduce_train(split: Split, artists: np.ndarray, fraction: float, seed: int) -> Split:
    """Keep `fraction` of each artist's training tracks (at least one)."""
    rng = np.random.default_rng(seed + 10_000)
    keep: list[int] = []
    for artist in sorted(set(artists[split.train])):
        idx = rng.permutation(split.train[artists[split.train] == artist])
        keep += idx[: max(1, round(fraction * len(idx)))].tolist()
    return Split(np.array(sorted(keep), dtype=int), split.val, split.test)


def gender_split(artists: np.ndarray, genders: np.ndarray, seed: int,
                 test: float = 0.2) -> Split | None:
    """Singer-disjoint: per gender, ~20% of singers (>= 1) to test, one more to validation when
    the gender has three or more; None when some gender has fewer than two singers."""
    rng = np.random.default_rng(seed)
    labelled = genders != ""
    kinds = sorted(set(genders[labelled]))
    if len(kinds) < 2:
        return None
    test_singers, val_singers = [], []
    for g in kinds:
        singers = rng.permutation(sorted(set(artists[labelled & (genders == g)])))
        if len(singers) < 2:
            return None
        n_test = max(1, round(test * len(singers)))
        test_singers += singers[:n_test].tolist()
        if len(singers) - n_test >= 2:
            val_singers.append(singers[n_test])
    in_test = labelled & np.isin(artists, test_singers)
    in_val = labelled & np.isin(artists, val_singers)
    train = labelled & ~in_test & ~in_val
    return Split(np.flatnonzero(train), np.flatnonzero(in_val), np.flatnonzero(in_test))
