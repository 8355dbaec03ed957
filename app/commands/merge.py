"""`cvsm merge`: gather sharded `cvsm index` runs into one database and one FAISS index."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge sharded index runs and build the FAISS index")
    p.add_argument("--db", help="target SQLAlchemy URL (default: SQLite file in the data dir)")
    p.add_argument("--data-dir", type=Path, default=Path("data"),
                   help="where the merged FAISS index goes (default: data)")
    p.add_argument("--from", dest="sources", action="append", default=[], metavar="URL",
                   help="a shard's database to copy rows from (repeat); omit when the shards "
                   "wrote into the target database itself")
    p.add_argument("--checkpoint", type=Path,
                   help="model whose vectors to index (default: the only model in the rows)")
    p.add_argument("--index-factory", help='FAISS factory, e.g. "HNSW32,Flat" (default: by size)')
    p.add_argument("--vocal-gate", action="store_true",
                   help="with --checkpoint: the shards were indexed with --vocal-gate")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index.db import sqlite_url
    from index.merge import merge

    fingerprint = None
    if args.checkpoint:
        from model.inference.embedder import Embedder
        fingerprint = Embedder.from_checkpoint(args.checkpoint, "cpu",
                                               gate=args.vocal_gate).fingerprint
    summary = merge(args.db or sqlite_url(args.data_dir), args.data_dir, args.sources,
                    fingerprint, args.index_factory)
    print(summary.line())
    return 0
