"""The one vocal-activity rule (docs/design.md, Vocal activity): where a voice sings.

A manifest's per-frame labels win when present (40 ms frames, 20 ms hop). Without them, a 10 ms
frame of the vocals stem is sung when its level is within `GATE_DB` of the track's loud frames
(95th percentile) and above an absolute floor. Training samples crops by these 10 ms flags;
evaluation turns the same flags into per-chunk flags (a chunk is sung when `SUNG_SHARE` of it
is), so both stages agree on what singing is.
"""

from __future__ import annotations

import numpy as np

from model.audio.signal import CHUNK

#: 10 ms analysis frames of the energy rule.
FRAME = 160
#: Frames more than this far (dB) under the track's loud frames count as silent.
GATE_DB = 35.0
#: Frames under this absolute level (dB re full scale, per sample) are never sung.
FLOOR_DB = -70.0
#: A 1 s chunk "has singing" when at least this share of its frames is sung.
SUNG_SHARE = 0.25


def frame_energy(x: np.ndarray) -> np.ndarray:
    """Sum of squares per 10 ms frame (a last partial frame included)."""
    n = len(x) // FRAME * FRAME
    e = np.square(x[:n].astype(np.float64)).reshape(-1, FRAME).sum(axis=1)
    if len(x) > n:
        e = np.append(e, np.square(x[n:].astype(np.float64)).sum())
    return e


def energy_activity(vocals: np.ndarray, frames: int | None = None) -> np.ndarray:
    """Per-10 ms sung flags of a vocals stem by the energy rule (first `frames` frames)."""
    energy = frame_energy(vocals)
    if frames is not None:
        energy = energy[:frames]
    if energy.size == 0:
        return np.zeros(0, dtype=bool)
    db = 10 * np.log10(energy / FRAME + 1e-12)
    loud = np.percentile(db, 95)
    return (db > loud - GATE_DB) & (db > FLOOR_DB)


def labels_at(labels: np.ndarray, label_hop_s: float, times_s: np.ndarray) -> np.ndarray:
    """The labels' value at `times_s` (label frame i covers [i hop, i hop + 2 hop))."""
    if not len(labels):
        return np.zeros(len(times_s), dtype=bool)
    idx = np.clip(((times_s - label_hop_s) / label_hop_s).round().astype(int), 0,
                  len(labels) - 1)
    return labels[idx]


def chunk_share(flags: np.ndarray, centres: np.ndarray, count: int) -> np.ndarray:
    """Per-chunk sung flags from frame flags whose centres (in samples) are given."""
    index = np.minimum(centres // CHUNK, count - 1)
    sung = np.bincount(index, weights=flags.astype(float), minlength=count)
    total = np.bincount(index, minlength=count)
    return (sung / np.maximum(total, 1)) >= SUNG_SHARE
