"""Reading against mapping a saved FAISS index (issue 15, `CVSM_INDEX_MMAP`): the process's own
memory (RssAnon) after loading and searching, and search latency, each in a fresh process.

    python benchmarks/faiss_mmap.py --n 1000000 --like runs/mir1k-windows.npy \
        --factory "OPQ64_256,IVF4096,PQ64,Refine(SQ8)"

The index is built once (vectors drawn like real embeddings, as benchmarks/faiss_search.py),
saved, and then opened by two child processes: `VectorIndex.load` (read) and the same file
mapped (`MappedIndex`), each timing 100 single queries twice (the second pass is reported, so
both search with the file's pages in the page cache).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from faiss_search import Like, chunks, unit_vectors  # this folder is on sys.path

from index.mapped import MappedIndex
from index.vectors import VectorIndex


def anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(folder: str, mode: str, queries: str) -> None:
    """Open the saved index (read or mapped), search, print memory and latency as JSON."""
    faiss.omp_set_num_threads(1)
    q = np.load(queries)
    start = anon_mb()
    index = VectorIndex.load(Path(folder), "bench", mmap=mode == "mapped")
    if mode == "mapped":
        index = MappedIndex(index)
    loaded = anon_mb() - start
    for _ in range(2):
        times = []
        for row in q:
            t = time.perf_counter()
            index.search(row[None, :], 10)
            times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"mode": mode, "own_mb_after_load": round(loaded, 1),
                      "own_mb_after_search": round(anon_mb() - start, 1),
                      "p50_ms": round(float(np.median(times)), 3),
                      "p99_ms": round(float(np.percentile(times, 99)), 3)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--like", type=Like, required=True, metavar="NPY")
    p.add_argument("--factory", default="OPQ64_256,IVF4096,PQ64,Refine(SQ8)")
    p.add_argument("--train", type=int, default=100_000)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        index = VectorIndex(1280, "bench", args.factory)
        if not index.index.is_trained:
            index.index.train(np.concatenate(
                [x for _, x in chunks(args.train, 1280, 0, 0, args.like)]))
        for ids, x in chunks(args.n, 1280, 0, 0, args.like):
            index.index.add_with_ids(x, ids)
        index.tags = {}
        index.save(Path(tmp))
        size = sum(f.stat().st_size for f in Path(tmp).glob("*.faiss")) / 2**20
        del index
        queries = Path(tmp) / "q.npy"
        np.save(queries, unit_vectors(np.random.default_rng(5), 100, 1280, 0, args.like))
        out = {"n": args.n, "factory": args.factory, "file_mb": round(size, 1)}
        for mode in ("read", "mapped"):
            done = subprocess.run([sys.executable, __file__, "--like", "-", "--child", tmp, mode,
                                   str(queries)], capture_output=True, text=True, check=True)
            out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(out))


if __name__ == "__main__":
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        child(*sys.argv[i + 1:i + 4])
    else:
        main()
