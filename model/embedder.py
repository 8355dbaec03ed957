"""Inference: waveform or file -> the track embedding of DESIGN.md.

A track is cut into non-overlapping 1 s chunks (each 5 s block first scaled to unit L2 norm, the
level the encoder was trained on); the 1280-d backbone outputs of the chunks that hold sound (or
singing, when a mask is given) are averaged and L2-normalised, so cosine similarity is an inner
product. Eval mode, no autograd, denormals flushed: the same input gives the same vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model import checkpoint as ckpt_io
from model.audio import SAMPLE_RATE, AudioSource, decode
from model.encoder import EMBED_DIM, CVSMModel

CHUNK = SAMPLE_RATE
BLOCK = 5 * SAMPLE_RATE
#: A chunk whose RMS is below this (after block normalisation) holds no sound worth embedding.
SOUND_RMS = 1e-3 / np.sqrt(BLOCK)
MIN_TAIL = SAMPLE_RATE // 2


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def normalise_blocks(wave: np.ndarray) -> np.ndarray:
    """Scale each 5 s block to the RMS of a unit-norm 5 s segment (training's level)."""
    out = np.zeros_like(wave, dtype=np.float32)
    target = 1.0 / np.sqrt(BLOCK)
    for start in range(0, len(wave), BLOCK):
        block = wave[start:start + BLOCK].astype(np.float64)
        rms = np.sqrt(np.mean(block**2)) if block.size else 0.0
        if rms > 1e-7:
            out[start:start + BLOCK] = block * (target / rms)
    return out


def chunk(wave: np.ndarray) -> np.ndarray:
    """(n,) -> (chunks, 16000): whole seconds, plus a zero-padded tail of >= 0.5 s."""
    wave = normalise_blocks(np.asarray(wave, dtype=np.float32))
    n_full = len(wave) // CHUNK
    tail = len(wave) - n_full * CHUNK
    pieces = [wave[: n_full * CHUNK].reshape(n_full, CHUNK)]
    if tail >= MIN_TAIL or n_full == 0:
        padded = np.zeros((1, CHUNK), dtype=np.float32)
        padded[0, :tail] = wave[n_full * CHUNK:]
        pieces.append(padded)
    return np.concatenate(pieces)


def sound_mask(chunks: np.ndarray) -> np.ndarray:
    """Chunks with sound in them; all chunks when none passes (a quiet track still embeds)."""
    rms = np.sqrt(np.mean(chunks.astype(np.float64) ** 2, axis=1))
    mask = rms > SOUND_RMS
    return mask if mask.any() else np.ones_like(mask)


def pool(chunk_embeddings: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of the selected chunk embeddings, L2-normalised (float32)."""
    if mask is not None and mask.any():
        chunk_embeddings = chunk_embeddings[mask]
    vec = chunk_embeddings.mean(axis=0).astype(np.float32)
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


@dataclass
class Embedder:
    """A loaded backbone ready to embed; build it with `from_checkpoint`."""

    model: CVSMModel
    device: torch.device
    fingerprint: str
    config: dict
    batch_size: int = 64
    dim: int = EMBED_DIM
    #: Singers the model was trained on (kept so evaluation can stay singer-disjoint).
    train_artists: tuple[str, ...] = ()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto",
                        batch_size: int = 64) -> Embedder:
        """Load a training checkpoint or an inference export."""
        data = ckpt_io.load(path)
        state = ckpt_io.backbone_state(data["model"])
        embedder = cls.from_state(state, data.get("config", {}), device, batch_size,
                                  fingerprint=data.get("fingerprint"))
        embedder.train_artists = tuple(data.get("train_artists", ()))
        return embedder

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], config: dict, device: str = "auto",
                   batch_size: int = 64, fingerprint: str | None = None) -> Embedder:
        dev = resolve_device(device)
        model = CVSMModel()
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        model.eval().to(dev)
        if dev.type == "cpu":
            torch.set_flush_denormal(True)
        return cls(model=model, device=dev, fingerprint=fingerprint or ckpt_io.fingerprint(state),
                   config=config, batch_size=batch_size)

    @torch.inference_mode()
    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        """(n, 16000) normalised chunks -> (n, 1280) backbone embeddings, in batches."""
        out = []
        for start in range(0, len(chunks), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(chunks[start:start + self.batch_size]))
            out.append(self.model.embed(batch.to(self.device)).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out)

    def embed_waveform(self, wave: np.ndarray, voiced: np.ndarray | None = None) -> np.ndarray:
        """One track's L2-normalised embedding; `voiced` (per chunk) overrides the sound gate."""
        chunks = chunk(wave)
        mask = sound_mask(chunks) if voiced is None else voiced[: len(chunks)]
        return pool(self.embed_chunks(chunks), mask)

    def embed_many(self, waves: list[np.ndarray]) -> np.ndarray:
        """Several tracks at once: their chunks share batches (the indexing path)."""
        if not waves:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunked = [chunk(w) for w in waves]
        emb = self.embed_chunks(np.concatenate(chunked))
        vectors, start = [], 0
        for c in chunked:
            vectors.append(pool(emb[start:start + len(c)], sound_mask(c)))
            start += len(c)
        return np.stack(vectors)

    def embed_file(self, source: AudioSource, max_seconds: float = 600.0) -> np.ndarray:
        return self.embed_waveform(decode(source, max_seconds=max_seconds).samples)
