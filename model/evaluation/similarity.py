"""Artist similarity in episodes (the paper's protocol): mean normalised rank and EER.

An episode draws up to 50 artists and two tracks of each, from two different songs when the
artist has them (so the same recording never matches itself). Each first track ranks the second
tracks of all the episode's artists by cosine, and vice versa; the rank of its own artist's
track, scaled to [0, 1], averages to the MNR (0 best). Same- versus different-artist cosine
scores of all episodes give the equal error rate.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

EPISODE_ARTISTS = 50


def pairable(artists: np.ndarray, songs: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Per artist, track indices grouped by song; artists with two songs (or, when songs are
    unknown, two tracks) only."""
    groups: dict[str, list[np.ndarray]] = {}
    known = all(songs)
    for artist in sorted(set(artists)):
        idx = np.flatnonzero(artists == artist)
        by_song = ([idx[songs[idx] == s] for s in sorted(set(songs[idx]))] if known
                   else [idx[i:i + 1] for i in range(len(idx))])
        if len(by_song) >= 2:
            groups[artist] = by_song
    return groups


def draw_episode(groups: dict[str, list[np.ndarray]], rng: np.random.Generator,
                 size: int = EPISODE_ARTISTS) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned index arrays: first[i] and second[i] are tracks of the same artist."""
    names = sorted(groups)
    chosen = rng.choice(len(names), size=min(size, len(names)), replace=False)
    first, second = [], []
    for k in chosen:
        songs = groups[names[k]]
        a, b = rng.choice(len(songs), size=2, replace=False)
        first.append(rng.choice(songs[a]))
        second.append(rng.choice(songs[b]))
    return np.array(first), np.array(second)


def normalised_ranks(scores: np.ndarray) -> np.ndarray:
    """Row i's rank of column i among all columns, 0 (top) to 1 (bottom); ties count against."""
    n = len(scores)
    if n < 2:
        return np.zeros(n)
    beaten = (scores >= np.diag(scores)[:, None]).sum(axis=1) - 1
    return beaten / (n - 1)


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """EER from sklearn's ROC: where the miss rate crosses the false-alarm rate."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def similarity_metrics(tracks: np.ndarray, artists: np.ndarray, songs: np.ndarray,
                       episodes: int, seed: int) -> dict[str, float]:
    """MNR and EER over `episodes` random episodes of L2-normalised track embeddings."""
    groups = pairable(np.asarray(artists), np.asarray(songs))
    if len(groups) < 2:
        return {"mnr": float("nan"), "eer": float("nan"), "artists": len(groups)}
    rng = np.random.default_rng(seed)
    ranks, labels, scores = [], [], []
    for _ in range(episodes):
        first, second = draw_episode(groups, rng)
        sim = tracks[first] @ tracks[second].T
        ranks += [normalised_ranks(sim), normalised_ranks(sim.T)]
        labels.append(np.eye(len(sim), dtype=bool).ravel())
        scores.append(sim.ravel())
    return {"mnr": float(np.concatenate(ranks).mean()),
            "eer": equal_error_rate(np.concatenate(labels), np.concatenate(scores)),
            "artists": min(len(groups), EPISODE_ARTISTS)}
