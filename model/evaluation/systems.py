"""Trained CVSM checkpoints as feature extractors for the harness."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.audio.signal import CHUNK, SAMPLE_RATE


@dataclass
class EmbedderExtractor:
    """The 1280-d backbone output of a `model.embedder.Embedder` (the paper's representation)."""

    name: str
    embedder: object  # model.embedder.Embedder, imported lazily (it pulls in PyAV)
    standardise: bool = False
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        seconds = (CHUNK + 2 * self.context) / SAMPLE_RATE
        heard = "" if not self.context else f", each heard as a {seconds:g} s window"
        self.info = {"track_embedding": f"L2-normalised mean of sung 1 s chunks{heard}",
                     **self.info}

    @property
    def context(self) -> int:
        """Samples of neighbouring audio the model hears on each side of a chunk."""
        return self.embedder.model.context

    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        return self.embedder.embed_chunks(chunks)

    def embed_track(self, wave: np.ndarray) -> None:
        return None  # tracks are pooled from sung chunks

    def embed_tracks(self, waves: list[np.ndarray]) -> list[np.ndarray] | None:
        """With separation, whole tracks as the service embeds them (separated, pooled over
        the seconds the detector finds sung); None otherwise (pooled from sung chunks)."""
        if getattr(self.embedder, "separator", None) is None:
            return None
        return list(self.embedder.embed_many(waves)) if waves else []

    def embed_songs(self, waves: list[np.ndarray],
                    truth: list[np.ndarray] | None = None) -> np.ndarray:
        """Whole songs as served (truth None) or pooled over the stems' sung seconds."""
        return self.embedder.embed_many(waves, truth)


def checkpoint_system(path: str | Path, device: str = "auto", batch_size: int = 256,
                      embedding: str = "auto", separation: bool = False,
                      separation_input: str = "both") -> EmbedderExtractor:
    """Load a training checkpoint or an inference export; `info` keeps its config. With
    `embedding` "kd" the distillation head's projection is scored instead of the backbone;
    with `separation` the voice is separated first, as `cvsm serve --separation on` does."""
    from model.inference.embedder import Embedder

    embedder = Embedder.from_checkpoint(path, device=device, batch_size=batch_size,
                                        embedding=embedding, separation=separation)
    if separation and separation_input != "both":
        embedder.use_separation(embedder.separator, inputs=separation_input)
    name = Path(path).stem + ("" if embedder.embedding == "backbone" else f"-{embedder.embedding}")
    name += ("-separated" + ("-voice" if separation_input == "voice" else "")) if separation \
        else ""
    info = {"checkpoint": str(path), "fingerprint": embedder.fingerprint,
            "separation": separation, "separation_input": separation_input,
            "config": embedder.config, "embedding": embedder.embedding, "dim": embedder.dim}
    return EmbedderExtractor(name=name, embedder=embedder, info=info)


def train_artists(system: object) -> list[str]:
    """Singers a checkpoint was trained on (recorded by `cvsm train`, or a config list
    `train_artists`), for singer-disjoint evaluation."""
    embedder = getattr(system, "embedder", None)
    if getattr(embedder, "train_artists", ()):
        return list(embedder.train_artists)
    config = getattr(system, "info", {}).get("config") or {}
    return list(config.get("train_artists") or [])
