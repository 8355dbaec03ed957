"""First-run set-up for `cvsm serve`: database schema, model file, demo catalog.

Kept apart from the app factory so tests can build an app over any catalog, while a fresh
machine gets a working service from one command.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from app.main import configure_threads, load_embedder, open_catalog
from app.settings import Settings
from index.job import JobConfig, run_index
from model import checkpoint
from model.data.synth import generate
from model.encoder import CVSMModel
from model.inference.embedder import Embedder
from model.weights import default_checkpoint

log = logging.getLogger("cvsm.app")
UNTRAINED = "untrained-init.pt"


def untrained_checkpoint(data_dir: Path) -> Path:
    """A seeded, freshly initialised network (the `init_checkpoint` test fixture's recipe).

    Only a stand-in while the bundled trained model is absent: results are not meaningful.
    """
    path = data_dir / "models" / UNTRAINED
    if not path.is_file():
        torch.manual_seed(0)
        checkpoint.export_inference({"model": CVSMModel().state_dict(),
                                     "config": {"name": "init"}}, path)
    return path


def resolve_checkpoint(settings: Settings) -> Path:
    if settings.checkpoint is not None:
        return settings.checkpoint
    try:
        return default_checkpoint()
    except FileNotFoundError:
        log.warning("the bundled model is missing: serving an UNTRAINED network "
                    "(set CVSM_CHECKPOINT to a trained model)")
        return untrained_checkpoint(settings.data_dir)


def seed_demo(settings: Settings, embedder: Embedder) -> int:
    """Synthesise a small corpus into the data dir and index it with the batch job
    (`cvsm index`'s code path), so the demo catalog is built exactly as a real one."""
    manifest = generate(settings.data_dir / "demo", settings.demo_singers, settings.demo_songs,
                        seconds=8.0, seed=0)
    job = JobConfig(catalog=manifest, data_dir=settings.data_dir, db_url=settings.db_url,
                    progress=False)
    return run_index(job, embedder).indexed


def prepare(settings: Settings) -> tuple[Settings, Embedder]:
    """Migrate, load the model, seed an empty catalog; returns the resolved settings + model."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"checkpoint": resolve_checkpoint(settings)})
    configure_threads(settings)
    embedder = load_embedder(settings)
    catalog = open_catalog(settings, embedder)  # runs the Alembic migrations first
    try:
        empty = catalog.stats()["tracks"] == 0
    finally:
        catalog.close()
    if settings.seed_demo and empty:
        log.info("empty catalog: seeding the demo corpus")
        log.info("demo catalog: %d tracks indexed", seed_demo(settings, embedder))
    return settings, embedder
