"""Would re-ranking the catalog search help singer retrieval? (issue 17)

Query expansion (alpha-QE, Radenovic et al. 2018): search, average the query with its top-k
hits weighted by similarity**alpha, search again. Database-side augmentation (DBA): every
catalog vector is averaged with its own top-k neighbours in the catalog before any query.
Both are applied honestly per query: the hits and neighbours are drawn only from the tracks
the protocol lets that query retrieve (other songs, never itself), so no query sees itself
or its own song through the back door.

Track vectors are the ones `cvsm evaluate` scored (its tracks.npz), so a grid over k and
alpha costs seconds. --per-singer also scores sparse catalogs (n random tracks per singer,
several draws): re-ranking leans on a singer having many tracks, and this shows the price
where one does not.

    cvsm evaluate --retrieval-only --checkpoint runs/cos1/A/last.pt --data MIR1K_DEV/clips.csv \\
        --fold A --out runs/eval/cos1_A
    python benchmarks/rerank_study.py runs/eval/cos1_A/tracks.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from model.audio.signal import l2_normalise
from model.evaluation.retrieval import DIRECTIONS, candidate_mask


def _weighted_neighbours(vectors: np.ndarray, sims: np.ndarray, k: int,
                         alpha: float) -> np.ndarray:
    """Sum of each row's top-k `vectors` by `sims` (-inf = not allowed), weighted by
    max(sim, 0)**alpha (alpha 0: a plain mean of the hits)."""
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sims, top, axis=1)
    w = np.where(np.isfinite(s), np.maximum(s, 0.0) ** alpha, 0.0)
    return np.einsum("nk,nkd->nd", w, vectors[top])


def expand_queries(queries: np.ndarray, catalog: np.ndarray, k: int, alpha: float = 0.0,
                   allowed: np.ndarray | None = None) -> np.ndarray:
    """alpha-QE: each query plus its top-k catalog hits (among `allowed`, a (q, n) mask),
    weighted by similarity**alpha, re-normalised. k = 0 returns the queries unchanged."""
    if k <= 0:
        return queries
    sims = queries @ catalog.T
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    return l2_normalise(queries + _weighted_neighbours(catalog, sims, k, alpha))


def augment_catalog(catalog: np.ndarray, k: int, alpha: float = 0.0) -> np.ndarray:
    """DBA: each catalog vector plus its top-k other catalog vectors, weighted as in QE."""
    if k <= 0:
        return catalog
    sims = catalog @ catalog.T
    np.fill_diagonal(sims, -np.inf)
    return l2_normalise(catalog + _weighted_neighbours(catalog, sims, k, alpha))




def track_vectors(path: Path) -> dict[str, np.ndarray]:
    """{"mixture", "vocals", "artists", "songs"} from `cvsm evaluate`'s tracks.npz."""
    with np.load(path) as z:
        return dict(z)


def sparse_catalog(artists: np.ndarray, per_singer: int, rng: np.random.Generator) -> np.ndarray:
    """Mask keeping `per_singer` random tracks of each singer (all when fewer)."""
    keep = np.zeros(len(artists), dtype=bool)
    for a in np.unique(artists):
        idx = np.flatnonzero(artists == a)
        keep[rng.choice(idx, min(per_singer, len(idx)), replace=False)] = True
    return keep


def scored(v: dict[str, np.ndarray], q: str, c: str, k_dba: int, k_qe: int, alpha: float,
           in_catalog: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-query (P@1, AP): each query's catalog is what the protocol allows it (other songs,
    never itself) among `in_catalog`; DBA runs over that catalog, then QE, then the ranking."""
    allowed = candidate_mask(v["songs"]) & in_catalog[None, :]
    same = v["artists"][:, None] == v["artists"][None, :]
    p1, ap = [], []
    for i in range(len(v["songs"])):
        keep = allowed[i]
        if not same[i, keep].any():
            continue
        catalog = augment_catalog(v[c][keep], k_dba, alpha)
        query = expand_queries(v[q][i:i + 1], catalog, k_qe, alpha)[0]
        scores, relevant = catalog @ query, same[i, keep]
        p1.append(float(relevant[np.argmax(scores)]))
        ap.append(average_precision_score(relevant, scores))
    return p1, ap


GRID = [(0, 0, 0.0), (0, 3, 0.0), (2, 2, 0.0), (5, 3, 0.0), (5, 3, 3.0), (10, 3, 3.0),
        (10, 5, 0.0), (20, 5, 3.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", type=Path, nargs="+", help="tracks.npz of `cvsm evaluate` runs")
    ap.add_argument("--per-singer", type=int, nargs="+", default=[0, 1, 2, 5],
                    help="catalog sizes per singer to score (0: every track)")
    ap.add_argument("--draws", type=int, default=3, help="random catalogs per sparse size")
    args = ap.parse_args()
    for path in args.vectors:
        print(f"{path}: P@1 / mAP for " + ", ".join(DIRECTIONS))
        study(track_vectors(path), args.per_singer, args.draws)


def study(v: dict[str, np.ndarray], sizes: list[int], draws_per_size: int) -> None:
    """Print the GRID's P@1 / mAP for every catalog size."""
    for per_singer in sizes:
        draws = draws_per_size if per_singer else 1
        for k_dba, k_qe, alpha in GRID:
            rng = np.random.default_rng(0)  # the same catalogs for every setting
            cells = {name: ([], []) for name in DIRECTIONS if DIRECTIONS[name][0] in v}
            for _ in range(draws):
                keep = (sparse_catalog(v["artists"], per_singer, rng) if per_singer
                        else np.ones(len(v["songs"]), dtype=bool))
                for name, (q, c) in DIRECTIONS.items():
                    if name in cells:
                        p1, ap = scored(v, q, c, k_dba, k_qe, alpha, keep)
                        cells[name][0].extend(p1)
                        cells[name][1].extend(ap)
            text = "  ".join(f"{np.mean(p):.3f} / {np.mean(a):.3f}" for p, a in cells.values())
            print(f"per singer {per_singer or 'all':>3} dba {k_dba:2d} qe {k_qe} "
                  f"alpha {alpha:.0f}: {text}", flush=True)


if __name__ == "__main__":
    main()
