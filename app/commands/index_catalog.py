"""`cvsm index`: embed a catalog (manifest CSV or audio folder) into SQL rows + a FAISS index.

The data dir, database, model, device, backend, vocal gate and FAISS type come from `Settings`
(flag > CVSM_* > .env > default), as for `cvsm serve`, so a service started with the same
environment opens the index this command built.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands.checks import UserError, catalog_path, model_file
from app.commands.options import (
    SettingsHelpFormatter,
    add_catalog_options,
    add_model_options,
    add_setting,
    settings_from,
)

if TYPE_CHECKING:
    from app.settings import Settings
    from index.job import JobConfig
    from model.facts import TrackEmbedder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a catalog into SQL + FAISS (incremental, resumable)",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("--catalog", type=Path, required=True,
                   help="manifest CSV (docs/manifest.md) or a folder scanned for audio files")
    add_catalog_options(p)
    add_model_options(p)
    add_setting(p, "--index-factory", field="index_factory", metavar="FACTORY")
    p.add_argument("--extra-model", action="store_true",
                   help="embed the catalog's indexed tracks with --checkpoint as another model "
                   "beside the catalog's own (its rows stay; give the manifest or folder they "
                   "were indexed from); serve it with `cvsm serve --model NAME=PT`")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process and its decoding workers (the reference); ray: "
                   "a Ray cluster (decoding tasks, an actor pool of models, GPUs when present)")
    p.add_argument("--address", help="ray: the cluster to join (auto, or HOST:PORT of its "
                   "head); default: start a local one")
    p.add_argument("--actors", type=int, default=1,
                   help="ray: embedding actors (one GPU each where the cluster has GPUs)")
    p.add_argument("--actor-threads", type=int, default=1,
                   help="ray: intra-op threads of each CPU actor (each reserves one CPU)")
    p.add_argument("--shard", help="K/N: index only slice K (0-based) of N; then `cvsm merge`")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding processes (default: the CPU count, at most 4; on 2 cores "
                        "2 index 44.1 kHz MP3s 1.2x faster than 1, docs/benchmarks.md)")
    p.add_argument("--batch", type=int, default=16, help="tracks per embedding batch / commit")
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from index.job import JobConfig, run_index  # torch loads only when the command runs
    from index.sources import parse_shard
    from model.inference.backends import torch_threads_for
    from model.inference.embedder import Embedder

    settings = settings_from(args)
    catalog_path(args.catalog)  # before anything is created
    if args.extra_model and (args.shard or settings.checkpoint is None):
        raise UserError("--extra-model needs --checkpoint (the other model) and no --shard")
    embedder = Embedder.from_checkpoint(model_file(settings),
                                        settings.device, backend=settings.backend,
                                        gate=settings.vocal_gate, threads=args.threads,
                                        separation=settings.separation)
    torch.set_num_threads(torch_threads_for(embedder.backend, torch.get_num_threads()))
    cfg = JobConfig(catalog=args.catalog, data_dir=settings.data_dir, db_url=settings.db_url,
                    shard=parse_shard(args.shard), workers=args.workers, batch=args.batch,
                    index_factory=settings.index_factory, progress=not args.no_progress)
    if args.engine == "ray":
        return _run_ray(args, cfg, embedder, settings)
    if args.extra_model:
        from index.model_job import OwnModelError, run_model_index

        try:
            print(run_model_index(cfg, embedder).line())
        except OwnModelError as exc:
            raise UserError(str(exc)) from None
        return 0
    summary = run_index(cfg, embedder)
    print(summary.line())
    if cfg.shard[1] > 1:
        print(f"shard {args.shard} done; run `cvsm merge` once every shard has finished")
    return 0


def _run_ray(args: argparse.Namespace, cfg: JobConfig, embedder: TrackEmbedder,
             settings: Settings) -> int:
    """The same job on a Ray cluster (index/ray_job.py); each actor loads the model itself."""
    from functools import partial

    from index.ray_job import RayOptions, run_index_ray
    from model.inference.embedder import Embedder

    if args.extra_model or cfg.shard[1] > 1:
        raise UserError("--engine ray indexes the whole catalog with its own model: no "
                        "--shard (Ray spreads the work) and no --extra-model")
    make = partial(Embedder.from_checkpoint, model_file(settings), backend=settings.backend,
                   gate=settings.vocal_gate, threads=args.actor_threads,
                   separation=settings.separation)
    try:
        summary = run_index_ray(cfg, embedder, make, RayOptions(
            address=args.address, actors=args.actors, batch=args.batch))
    except ValueError as exc:  # a pool that does not fit the cluster
        raise UserError(str(exc)) from None
    print(summary.line())
    return 0
