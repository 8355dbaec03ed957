"""`cvsm index`: embed a catalog (manifest CSV or audio folder) into SQL rows + a FAISS index."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from model.inference.backends import BACKENDS
from model.weights import default_checkpoint


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a catalog into SQL + FAISS (incremental, resumable)")
    p.add_argument("--catalog", type=Path, required=True,
                   help="manifest CSV (docs/manifest.md) or a folder scanned for audio files")
    p.add_argument("--checkpoint", type=Path, help="model file (default: the bundled model)")
    p.add_argument("--db", help="SQLAlchemy URL (default: SQLite file in the data dir)")
    p.add_argument("--data-dir", type=Path, default=Path("data"),
                   help="FAISS index and SQLite file (default: data)")
    p.add_argument("--shard", help="K/N: index only slice K (0-based) of N; then `cvsm merge`")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding processes (default: the CPU count, at most 4; on 2 cores "
                        "2 index 44.1 kHz MP3s 1.2x faster than 1, docs/benchmarks.md)")
    p.add_argument("--batch", type=int, default=16, help="tracks per embedding batch / commit")
    p.add_argument("--index-factory", help='FAISS factory, e.g. "HNSW32,Flat" (default: by size)')
    p.add_argument("--device", default="auto", help="torch device (default: cuda if present)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference runtime (default auto: torch on GPU, ONNX Runtime on CPU)")
    p.add_argument("--vocal-gate", action="store_true",
                   help="skip the backbone on chunks without singing (must match the service)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from index.job import JobConfig, run_index  # torch loads only when the command runs
    from index.sources import parse_shard
    from model.inference.backends import torch_threads_for
    from model.inference.embedder import Embedder

    embedder = Embedder.from_checkpoint(args.checkpoint or default_checkpoint(), args.device,
                                        backend=args.backend, gate=args.vocal_gate,
                                        threads=args.threads)
    torch.set_num_threads(torch_threads_for(embedder.backend, torch.get_num_threads()))
    cfg = JobConfig(catalog=args.catalog, data_dir=args.data_dir, db_url=args.db,
                    shard=parse_shard(args.shard), workers=args.workers, batch=args.batch,
                    index_factory=args.index_factory, progress=not args.no_progress)
    summary = run_index(cfg, embedder)
    print(summary.line())
    if cfg.shard[1] > 1:
        print(f"shard {args.shard} done; run `cvsm merge` once every shard has finished")
    return 0
