"""`cvsm index --engine ray`: the batch job on a Ray cluster (issue 15), with Ray Data.

The stages are the local job's (index/job.py) on Ray's scheduler: rows of the catalog (plain
strings, cheap to ship to any node) are hashed and decoded by CPU tasks, embedded by a
pool of actors (one GPU each where the cluster has GPUs, else CPU), and come back to the driver,
which commits them to SQL in batches (`write_tracks`, the local job's one writer) and builds the
FAISS index from SQL at the end (index/store.py: streamed, trained on a sample for IVF/PQ).

Exactly once, whatever fails: Ray re-runs a task whose worker died (tasks retry system
failures 3 times) and Ray Data restarts a dead actor and retries its batch (its defaults for
actor pools: unlimited restarts and retries), and a row is an upsert by track id, so a retried
block can only write the same row again. A second run after the driver died skips every track
whose content hash and model are already committed (the workers hash, compare and stop before
decoding), as the local job does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

from index.job import (
    JobConfig,
    Summary,
    _finish_index,
    _finish_run,
    _known_hashes,
    _start_run,
    open_job,
)
from index.repository import TrackWrite, unit_vector, write_tracks
from index.sources import READY, UNCHANGED, CatalogItem, prepare
from index.store import build_index
from index.uploads import UploadStore
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder

__all__ = ["RayOptions", "run_index_ray"]

#: What an embedding actor reserves (model, batch, runtime). Also keeps Ray Data from fusing
#: decoding into the actors (it fuses stages with equal resource requests): decoding must stay
#: in tasks that run beside them.
ACTOR_MEMORY = 3 << 29  # 1.5 GiB: Ray Data saw 1.1 GiB used by a CPU actor
#: Builds the embedding model inside an actor, given the device ("cpu", "cuda").
EmbedderFactory = Callable[[str], TrackEmbedder]


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None   # None: start a local cluster; "auto" or HOST:PORT: join one
    actors: int = 1              # embedding actors (GPU actors where the cluster has GPUs)
    batch: int = 16              # tracks per embedding batch
    decode_cpus: float = 1.0     # CPUs reserved per decoding task


def _rows(items: list[CatalogItem], known: dict[str, str]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield {"track_id": item.track_id, "files": json.dumps([str(f) for f in item.files]),
               "title": item.title, "artist": item.artist,
               "metadata": json.dumps(item.metadata), "from_tags": item.from_tags,
               "known": known.get(item.track_id, "")}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """Ray task: hash, compare with the committed hash, decode (index.sources.prepare)."""
    item = CatalogItem(row["track_id"], tuple(Path(f) for f in json.loads(row["files"])),
                       row["title"], row["artist"], json.loads(row["metadata"]),
                       row["from_tags"])
    p = prepare(item, row["known"] or None)
    return {**row, "status": p.status, "content_hash": p.content_hash,
            "error": p.error or "", "tags": json.dumps(p.tags),
            "samples": p.samples.astype(np.float32).tobytes() if p.samples is not None else b""}


class _Embed:
    """Ray actor: one model, embedding the ready rows of each batch together."""

    def __init__(self, make_embedder: EmbedderFactory, device: str) -> None:
        self.embedder = make_embedder(device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ready = [i for i, s in enumerate(batch["status"]) if s == READY]
        waves = [np.frombuffer(batch["samples"][i], np.float32) for i in ready]
        vectors = self.embedder.embed_many(waves) if waves else []
        out = np.full(len(batch["status"]), b"", dtype=object)
        for i, v in zip(ready, vectors, strict=True):
            out[i] = np.asarray(v, np.float32).tobytes()
        seconds = np.array([len(s) / 4 / SAMPLE_RATE for s in batch["samples"]])
        result = {k: v for k, v in batch.items() if k != "samples"}
        return result | {"vector": out, "seconds": seconds}


def run_index_ray(cfg: JobConfig, embedder: TrackEmbedder, make_embedder: EmbedderFactory,
                  opts: RayOptions) -> Summary:
    """Index `cfg.catalog` on a Ray cluster; `embedder` (the same model, loaded here) names
    the model and its dimension, `make_embedder` builds it in each actor."""
    import ray

    start = time.perf_counter()
    engine, sessions, items = open_job(cfg)
    with sessions() as session:
        known = _known_hashes(session, embedder.fingerprint)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=opts.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        _fits(opts)
        run_id = _start_run(sessions, cfg, embedder.fingerprint)
        summary = _stream(sessions, cfg, embedder, make_embedder, opts, items, known, run_id)
    finally:
        if started_here:
            ray.shutdown()
    index = build_index(sessions, embedder.fingerprint, embedder.dim, cfg.index_factory)
    summary.vectors = _finish_index(sessions, cfg, embedder, index).ntotal
    summary.seconds = time.perf_counter() - start
    _finish_run(sessions, run_id, summary)
    engine.dispose()
    return summary


def _fits(opts: RayOptions) -> bool:
    """Whether the cluster has GPUs; ValueError when CPU actors would leave no CPU for
    decoding (Ray Data would wait for ever)."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) >= 1
    cpus = ray.cluster_resources().get("CPU", 0)
    if not gpus and opts.actors + opts.decode_cpus > cpus:
        raise ValueError(f"{opts.actors} CPU actors and a {opts.decode_cpus:g}-CPU decoding "
                         f"task do not fit the cluster's {cpus:g} CPUs: use fewer --actors")
    return gpus


def _dataset(cfg: JobConfig, make_embedder: EmbedderFactory, opts: RayOptions,
             items: list[CatalogItem], known: dict[str, str]):
    import ray

    ray.data.DataContext.get_current().enable_progress_bars = cfg.progress
    gpus = _fits(opts)
    # Blocks of ~64 tracks for big catalogs (~128 MB once 30 s tracks are decoded, Ray Data's
    # preferred size; a retried block redoes little), at least 32 so small catalogs spread.
    blocks = max(1, min(len(items), max(32, len(items) // 64)))
    ds = ray.data.from_items(list(_rows(items, known)), override_num_blocks=blocks)
    ds = ds.map(_decode, num_cpus=opts.decode_cpus)
    return ds.map_batches(_Embed, fn_constructor_args=(make_embedder,
                                                       "cuda" if gpus else "cpu"),
                          batch_size=opts.batch, batch_format="numpy",
                          compute=ray.data.ActorPoolStrategy(size=opts.actors),
                          num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                          memory=ACTOR_MEMORY)


def _stream(sessions: sessionmaker, cfg: JobConfig, embedder: TrackEmbedder,
            make_embedder: EmbedderFactory, opts: RayOptions, items: list[CatalogItem],
            known: dict[str, str], run_id: int) -> Summary:
    """Commit the cluster's results in batches as they arrive."""
    summary, files, pending = Summary(), UploadStore(cfg.data_dir), []
    bar = tqdm(total=len(items), desc="index (ray)", unit="track", disable=not cfg.progress)
    for row in _dataset(cfg, make_embedder, opts, items, known).iter_rows():
        if row["status"] == UNCHANGED:
            summary.unchanged += 1
        else:
            pending.append(_write(row, embedder, files, run_id, summary))
        if len(pending) >= cfg.batch:
            _commit(sessions, pending)
        bar.update()
        bar.set_postfix(new=summary.indexed, same=summary.unchanged, failed=summary.failed)
    _commit(sessions, pending)
    bar.close()
    return summary


def _write(row: dict[str, Any], embedder: TrackEmbedder, files: UploadStore, run_id: int,
           summary: Summary) -> TrackWrite:
    """The row of one result, as index/job.py writes it (container tags override)."""
    tags = json.loads(row["tags"])
    vector = unit_vector(np.frombuffer(row["vector"], np.float32), embedder.dim) \
        if row["status"] == READY else None
    if vector is None:
        summary.failed += 1
    else:
        summary.indexed += 1
        summary.audio_seconds += float(row["seconds"])
    source = Path(json.loads(row["files"])[0])
    return TrackWrite(external_id=row["track_id"], model_fingerprint=embedder.fingerprint,
                      content_hash=row["content_hash"], source=files.source_of(source),
                      title=tags.get("title") or row["title"],
                      artist=tags.get("artist") or row["artist"],
                      metadata={**json.loads(row["metadata"]),
                                **{k: v for k, v in tags.items() if k not in ("title", "artist")}},
                      vector=vector, duration=float(row["seconds"]) if vector is not None else None,
                      error=row["error"] or None if vector is None else None, run_id=run_id)


def _commit(sessions: sessionmaker, pending: list[TrackWrite]) -> None:
    if pending:
        with sessions.begin() as session:
            write_tracks(session, pending)
        pending.clear()

