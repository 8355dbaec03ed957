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
from index.catalog import Catalog
from model import checkpoint
from model.audio import decode
from model.embedder import Embedder
from model.encoder import CVSMModel
from model.manifest import read_manifest
from model.synth import generate
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


def index_manifest(catalog: Catalog, manifest: Path) -> int:
    """Add every manifest row's mixture to the catalog (through `Catalog.add_track`)."""
    count = 0
    for track in read_manifest(manifest):
        path = track.mixture or track.vocals
        data = path.read_bytes()
        samples = decode(data).samples
        catalog.add_track(samples, source_bytes=data, filename=path.name,
                          external_id=track.track_id, title=track.title, artist=track.artist,
                          metadata={"gender": track.gender, "song": track.song, **track.extra})
        count += 1
    return count


def seed_demo(settings: Settings, catalog: Catalog) -> int:
    """Synthesise a small corpus into the data dir and index it through the index layer."""
    manifest = generate(settings.data_dir / "demo", settings.demo_singers, settings.demo_songs,
                        seconds=8.0, seed=0)
    return index_manifest(catalog, manifest)


def prepare(settings: Settings) -> tuple[Settings, Embedder]:
    """Migrate, load the model, seed an empty catalog; returns the resolved settings + model."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"checkpoint": resolve_checkpoint(settings)})
    configure_threads(settings)
    embedder = load_embedder(settings)
    catalog = open_catalog(settings, embedder)  # runs the Alembic migrations first
    try:
        if settings.seed_demo and catalog.stats()["tracks"] == 0:
            log.info("empty catalog: seeding the demo corpus")
            count = seed_demo(settings, catalog)
            log.info("demo catalog: %d tracks indexed", count)
    finally:
        catalog.close()
    return settings, embedder
