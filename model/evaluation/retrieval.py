"""Catalog retrieval by cosine: P@1 and mAP of same-singer tracks from other songs.

The protocol of mir1k-dev/README.md's anchors: every track is a query, the catalog is every
track of another song (only the query itself when songs are unknown), relevant = same singer.
Queries with no relevant item in their catalog (a singer with one song) are left out.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

#: Retrieval directions: name -> (query input, catalog input).
DIRECTIONS = {"mix->mix": ("mixture", "mixture"), "vocals->mix": ("vocals", "mixture"),
              "vocals->vocals": ("vocals", "vocals")}


def candidate_mask(songs: np.ndarray) -> np.ndarray:
    """(n, n) True where track j may be returned for query i: another song, never itself."""
    n = len(songs)
    if all(songs):
        allowed = songs[:, None] != songs[None, :]
    else:
        allowed = np.ones((n, n), dtype=bool)
    np.fill_diagonal(allowed, False)
    return allowed


def retrieval_metrics(queries: np.ndarray, catalog: np.ndarray, artists: np.ndarray,
                      songs: np.ndarray) -> dict[str, float]:
    """P@1 and mAP; row i of `queries` and of `catalog` are the same track (any input kind)."""
    scores = queries @ catalog.T
    allowed = candidate_mask(np.asarray(songs))
    same = np.asarray(artists)[:, None] == np.asarray(artists)[None, :]
    p1, ap = [], []
    for i in range(len(queries)):
        relevant = same[i, allowed[i]]
        if not relevant.any():
            continue
        s = scores[i, allowed[i]]
        p1.append(float(relevant[np.argmax(s)]))
        ap.append(average_precision_score(relevant, s))
    return {"p_at_1": float(np.mean(p1)) if p1 else float("nan"),
            "map": float(np.mean(ap)) if ap else float("nan"), "queries": len(p1)}


def retrieval_suite(tracks: dict[str, np.ndarray], artists: np.ndarray,
                    songs: np.ndarray) -> dict[str, dict[str, float]]:
    """mix->mix, vocals->mix and vocals->vocals (those whose inputs exist)."""
    return {name: retrieval_metrics(tracks[q], tracks[c], artists, songs)
            for name, (q, c) in DIRECTIONS.items() if q in tracks and c in tracks}
