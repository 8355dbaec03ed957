"""The Ray engine against the local one on the same catalog, in the same run (issue 15):
tracks/s of each and their ratio, the cluster's start-up apart from the job.

    python benchmarks/ray_overhead.py --mir1k 200 --format mp3 --work /tmp/cvsm-idx

The local engine runs as `cvsm index` does by default here (2 decoding processes, the model in
the main process on 2 threads); the Ray engine on a local cluster of this machine's CPUs
(`--actors` embedding actors with `--actor-threads` threads, each reserving 1 CPU; decoding
tasks reserving `--decode-cpus`), both with the same batch size, SQLite in fresh data dirs and
the same model and backend. Order alternates over --repeats rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from index_throughput import mir1k_catalog, model_file  # this folder is on sys.path

from index.job import JobConfig, run_index
from index.ray_job import RayOptions, run_index_ray
from model.inference.backends import torch_threads_for
from model.inference.embedder import Embedder


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mir1k", type=int, default=200)
    p.add_argument("--format", default="mp3", choices=("flac", "mp3"))
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/mir1k-dev"))
    p.add_argument("--work", type=Path, default=Path("/tmp/cvsm-index-bench"))
    p.add_argument("--backend", default="torch")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--actors", type=int, default=1)
    p.add_argument("--actor-threads", type=int, default=1)
    p.add_argument("--decode-cpus", type=float, default=1.0)
    args = p.parse_args()
    import ray

    manifest = mir1k_catalog(args.data, args.mir1k, args.work, 30.0, args.format)
    out = {"cpu": cpu_model(), "cpus": os.cpu_count(), "tracks": args.mir1k,
           "format": args.format, "backend": args.backend, "actors": args.actors,
           "actor_threads": args.actor_threads, "decode_cpus": args.decode_cpus,
           "local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = model_file(Path(tmp))
        embedder = Embedder.from_checkpoint(ckpt, "cpu", backend=args.backend, threads=2)
        torch.set_num_threads(torch_threads_for(embedder.backend, 2))
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        out["ray_start_s"] = round(time.perf_counter() - start, 2)
        make = partial(Embedder.from_checkpoint, ckpt, backend=args.backend,
                       threads=args.actor_threads)
        opts = RayOptions(actors=args.actors, batch=args.batch, decode_cpus=args.decode_cpus)
        for r in range(args.repeats):
            for engine in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                cfg = JobConfig(manifest, Path(tmp) / f"{engine}{r}", workers=2,
                                batch=args.batch, progress=False)
                summary = run_index(cfg, embedder) if engine == "local" else \
                    run_index_ray(cfg, embedder, make, opts)
                out[engine].append(round(summary.tracks_per_s, 3))
                print(engine, summary.line(), flush=True)
        ray.shutdown()
    best = {e: max(out[e]) for e in ("local", "ray")}
    out["ratio_ray_over_local"] = round(best["ray"] / best["local"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
