"""FAISS search latency and recall@10 of the index types `index.vectors` uses, on random unit
vectors (the worst case for approximate search: no cluster structure to exploit).

    python benchmarks/faiss_search.py --n 100000 --approx "PCA128,HNSW32,RFlat" --sweep 64,128,256
    python benchmarks/faiss_search.py --n 1000000 --approx "IVF1024,PQ64,RFlat" \
        --sweep 16,64,256 --train 50000 --k-factor 32,256
    add --intrinsic 32 for vectors near a 32-d subspace (closer to real embeddings), or
    --like runs/mir1k-windows.npy (benchmarks/real_embeddings.py) for vectors drawn from a
    Gaussian with the mean and covariance of real CVSM embeddings (the closest proxy we have)

The catalog is generated chunk by chunk from a fixed seed, so it is never held twice in memory:
the exact index is built, measured and used for the ground truth, freed, then the approximate
index is built from the same chunks. Latency is one query at a time (the service's case);
recall is over all queries, searched as one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import faiss
import numpy as np

from index.vectors import VectorIndex

CHUNK = 50_000


class Like:
    """A Gaussian with the mean and covariance of real embeddings (`x = mu + z L^T`), so a
    synthetic catalog has their spectrum: real CVSM vectors put 83% of their variance in 8
    directions and 99.6% in 128, which is what approximate indexes exploit."""

    def __init__(self, path: str) -> None:
        real = np.load(path).astype(np.float64)
        self.mean = real.mean(axis=0).astype(np.float32)
        values, vectors = np.linalg.eigh(np.cov(real.T))
        self.factor = (vectors * np.sqrt(np.clip(values, 0, None))).astype(np.float32)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        z = rng.standard_normal((n, len(self.mean)), dtype=np.float32)
        return z @ self.factor.T + self.mean


def unit_vectors(rng: np.random.Generator, n: int, dim: int, intrinsic: int,
                 like: Like | None = None) -> np.ndarray:
    """Random unit vectors: isotropic (intrinsic 0, the worst case), lying near a random
    `intrinsic`-dimensional subspace, or drawn `like` real embeddings."""
    if like is not None:
        x = like.sample(rng, n)
    elif not intrinsic:
        x = rng.standard_normal((n, dim), dtype=np.float32)
    else:
        basis = np.random.default_rng(999).standard_normal((intrinsic, dim), dtype=np.float32)
        x = rng.standard_normal((n, intrinsic), dtype=np.float32) @ basis
        x += 0.05 * np.sqrt(intrinsic) * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def chunks(n: int, dim: int, seed: int, intrinsic: int = 0, like: Like | None = None):
    """(ids, unit vectors) in chunks; the same seed gives the same catalog every time."""
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, start])
        x = unit_vectors(rng, min(CHUNK, n - start), dim, intrinsic, like)
        yield np.arange(start, start + len(x), dtype=np.int64), x


def build(factory: str, args: argparse.Namespace) -> tuple[VectorIndex, float]:
    start = time.perf_counter()
    n, dim, seed, intrinsic, like = args.n, args.dim, args.seed, args.intrinsic, args.like
    index = VectorIndex(dim, "bench", factory)
    if not index.index.is_trained:
        sample = np.concatenate([x for _, x in _take(chunks(n, dim, seed, intrinsic, like),
                                                     args.train)])[:args.train]
        index.index.train(sample)
        del sample
    for ids, x in chunks(n, dim, seed, intrinsic, like):
        index.index.add_with_ids(x, ids)
    return index, time.perf_counter() - start


def _take(gen, rows: int):
    got = 0
    for ids, x in gen:
        yield ids, x
        got += len(x)
        if got >= rows:
            return


def latency(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    """Results and per-query latency (ms) over single-query searches."""
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    ms = np.array(times)
    return np.stack(found), {"p50_ms": round(float(np.median(ms)), 2),
                             "p95_ms": round(float(np.percentile(ms, 95)), 2),
                             "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def index_mb(index: VectorIndex) -> float:
    """Size of the serialised index (what it holds in RAM: codes, graph, vectors, ids)."""
    path = f"/tmp/faiss-size-{os.getpid()}.index"
    faiss.write_index(index.index, path)
    size = os.path.getsize(path) / 2**20
    os.remove(path)
    return round(size, 1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth,
                                                                         strict=True)]))


def set_knob(index: VectorIndex, value: int, k_factor: float) -> str:
    inner = faiss.downcast_index(index.index.index)
    if isinstance(inner, faiss.IndexRefine):
        inner.k_factor = k_factor
        inner = faiss.downcast_index(inner.base_index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = value
        return "efSearch"
    inner.nprobe = value
    return "nprobe"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--approx", default="PCA128,HNSW32,RFlat")
    p.add_argument("--sweep", default="64,128,256", help="efSearch or nprobe values")
    p.add_argument("--train", type=int, default=100_000, help="training rows (IVF types)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="for building")
    p.add_argument("--search-threads", type=int, default=1,
                   help="for searching (the service searches single-threaded)")
    p.add_argument("--latency-queries", type=int, default=100,
                   help="how many queries are timed one at a time")
    p.add_argument("--k-factor", default="8",
                   help="re-ranking depths to sweep, comma-separated (RFlat types)")
    p.add_argument("--intrinsic", type=int, default=0,
                   help="0: isotropic random vectors; D: vectors near a D-dim subspace")
    p.add_argument("--like", type=Like, default=None, metavar="NPY",
                   help="draw vectors from a Gaussian fitted to these real embeddings")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(12345)
    queries = unit_vectors(rng, args.queries, args.dim, args.intrinsic, args.like)
    report = {"n": args.n, "dim": args.dim, "queries": args.queries, "k": args.k,
              "threads": args.threads, "search_threads": args.search_threads,
              "intrinsic": args.intrinsic, "like": args.like is not None}

    exact, secs = build("Flat", args)
    truth = exact.search(queries, args.k)[1]  # batched: the ground truth
    faiss.omp_set_num_threads(args.search_threads)
    _, lat = latency(exact, queries[:args.latency_queries], args.k)
    report["exact"] = {"factory": "IDMap2,Flat", "build_s": round(secs, 1),
                       "index_mb": index_mb(exact), **lat}
    print(json.dumps(report["exact"]), flush=True)
    del exact

    faiss.omp_set_num_threads(args.threads)
    approx, secs = build(args.approx, args)
    faiss.omp_set_num_threads(args.search_threads)
    report["approx"] = {"factory": f"IDMap2,{args.approx}", "build_s": round(secs, 1),
                        "index_mb": index_mb(approx), "sweep": []}
    print(f"built {args.approx} in {secs:.1f} s, {report['approx']['index_mb']} MB",
          flush=True)
    grid = [(int(v), float(f)) for f in args.k_factor.split(",") for v in args.sweep.split(",")]
    for value, k_factor in grid:
        knob = set_knob(approx, value, k_factor)
        found = approx.search(queries, args.k)[1]
        _, lat = latency(approx, queries[:args.latency_queries], args.k)
        row = {knob: value, "k_factor": k_factor, "recall@10": round(recall(found, truth), 3),
               **lat}
        report["approx"]["sweep"].append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
