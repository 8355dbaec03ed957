"""FAISS search latency and recall@10 of the index types `index.vectors` uses, on random unit
vectors (the worst case for approximate search: no cluster structure to exploit).

    python benchmarks/faiss_search.py --n 100000 --approx "HNSW32,Flat" --sweep 64,128,256,512
    python benchmarks/faiss_search.py --n 1000000 --approx "IVF4096,PQ64,RFlat" \
        --sweep 16,64,256 --train 150000

The catalog is generated chunk by chunk from a fixed seed, so it is never held twice in memory:
the exact index is built, measured and used for the ground truth, freed, then the approximate
index is built from the same chunks. Latency is one query at a time (the service's case).
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


def chunks(n: int, dim: int, seed: int):
    """(ids, unit vectors) in chunks; the same seed gives the same catalog every time."""
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, start])
        x = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield np.arange(start, start + len(x), dtype=np.int64), x


def build(factory: str, n: int, dim: int, train: int, seed: int) -> tuple[VectorIndex, float]:
    start = time.perf_counter()
    index = VectorIndex(dim, "bench", factory)
    if not index.index.is_trained:
        sample = np.concatenate([x for _, x in _take(chunks(n, dim, seed), train)])[:train]
        index.index.train(sample)
        del sample
    for ids, x in chunks(n, dim, seed):
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
        _, ids = index.index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    ms = np.array(times)
    return np.stack(found), {"p50_ms": round(float(np.median(ms)), 2),
                             "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth,
                                                                         strict=True)]))


def set_knob(index: VectorIndex, value: int) -> str:
    inner = faiss.downcast_index(index.index.index)
    if isinstance(inner, faiss.IndexRefine):
        inner = faiss.downcast_index(inner.base_index)
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
    p.add_argument("--approx", default="HNSW32,Flat")
    p.add_argument("--sweep", default="64,128,256", help="efSearch or nprobe values")
    p.add_argument("--train", type=int, default=100_000, help="training rows (IVF types)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(12345)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    report = {"n": args.n, "dim": args.dim, "queries": args.queries, "k": args.k,
              "threads": args.threads}

    exact, secs = build("Flat", args.n, args.dim, 0, args.seed)
    truth, lat = latency(exact, queries, args.k)
    report["exact"] = {"factory": "IDMap2,Flat", "build_s": round(secs, 1), **lat}
    print(json.dumps(report["exact"]), flush=True)
    del exact

    approx, secs = build(args.approx, args.n, args.dim, args.train, args.seed)
    report["approx"] = {"factory": f"IDMap2,{args.approx}", "build_s": round(secs, 1),
                        "sweep": []}
    print(f"built {args.approx} in {secs:.1f} s", flush=True)
    for value in (int(v) for v in args.sweep.split(",")):
        knob = set_knob(approx, value)
        found, lat = latency(approx, queries, args.k)
        row = {knob: value, "recall@10": round(recall(found, truth), 3), **lat}
        report["approx"]["sweep"].append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
