"""The signal facts every stage shares (docs/design.md, Signal): the rate, the 1 s chunks the
encoder sees, the level each 5 s block is brought to, and L2 normalisation.

Training crops, inference chunks and evaluation's per-chunk singing flags all derive from the
constants and functions here, so they cannot drift apart. NumPy only: the index and the CLIs
import this without loading torch.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
#: One vector per second: the encoder sees one second at a time (and, with a context, its
#: neighbourhood; `chunk`).
CHUNK = SAMPLE_RATE
#: Each block of this many samples is scaled to the level of a unit-norm 5 s training segment.
BLOCK = 5 * SAMPLE_RATE
#: A last partial chunk is kept (zero-padded) when it holds at least this many samples.
MIN_TAIL = SAMPLE_RATE // 2
#: A chunk whose RMS is below this (after block normalisation) holds no sound worth embedding.
SOUND_RMS = 1e-3 / np.sqrt(BLOCK)


def l2_normalise(vectors: np.ndarray, axis: int = -1) -> np.ndarray:
    """Unit L2 norm along `axis` (float32); zero vectors stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=axis, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


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


def n_chunks(n_samples: int) -> int:
    """How many chunks `chunk` makes of `n_samples`: whole seconds + a tail of >= 0.5 s."""
    full, tail = divmod(n_samples, CHUNK)
    return full + (1 if tail >= MIN_TAIL or full == 0 else 0)


def chunk(wave: np.ndarray, context: int = 0) -> np.ndarray:
    """(n,) -> (n_chunks(n), 16000 + 2 * context): block-normalised whole seconds, plus a
    zero-padded tail. With `context`, each chunk comes with that many samples of its neighbours
    on both sides (zeros beyond the track): a network that hears a longer window per chunk
    (a speaker encoder: 2 s instead of 1 s) still yields one vector per second, so singing
    flags, gates and pooling keep working per chunk."""
    wave = normalise_blocks(np.asarray(wave, dtype=np.float32))
    n = n_chunks(len(wave))
    padded = np.zeros(n * CHUNK + 2 * context, dtype=np.float32)
    kept = wave[: n * CHUNK + context]  # a dropped short tail still serves as context
    padded[context:context + len(kept)] = kept
    if context == 0:
        return padded.reshape(n, CHUNK)
    view = np.lib.stride_tricks.sliding_window_view(padded, CHUNK + 2 * context)[::CHUNK]
    return np.ascontiguousarray(view[:n])


def central(chunks: np.ndarray, context: int) -> np.ndarray:
    """The 1 s chunks inside `chunk(..., context)` windows (what gates and sound checks read)."""
    return chunks[:, context:context + CHUNK] if context else chunks


def sound_mask(chunks: np.ndarray) -> np.ndarray:
    """Chunks with sound in them; all chunks when none passes (a quiet track still embeds)."""
    rms = np.sqrt(np.mean(chunks.astype(np.float64) ** 2, axis=1))
    mask = rms > SOUND_RMS
    return mask if mask.any() else np.ones_like(mask)


def pool(chunk_embeddings: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of the selected chunk embeddings, L2-normalised (float32)."""
    if mask is not None and mask.any():
        chunk_embeddings = chunk_embeddings[mask]
    return l2_normalise(chunk_embeddings.mean(axis=0))


def within(mask: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """`mask` with only the `kept` ones of its True entries left True (a selection made among
    the selected chunks, mapped back to all of them)."""
    out = np.zeros_like(mask)
    out[np.flatnonzero(mask)[kept]] = True
    return out
