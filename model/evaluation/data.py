"""An evaluation corpus decoded once and held in memory: mixture, vocals and singing flags.

Several checkpoints (and baselines) are scored on the same corpus in one run, so decoding is
done here once. `model.audio` is imported only when a file is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.manifest import ACTIVITY_HOP_S, Track, read_activity, read_manifest

SAMPLE_RATE = 16_000
CHUNK = SAMPLE_RATE
MIN_TAIL = SAMPLE_RATE // 2  # the embedder keeps a last partial chunk of >= 0.5 s
#: A 1 s chunk "has singing" when at least this share of its activity frames is sung.
SUNG_SHARE = 0.25
#: Energy gate when no activity file exists: vocal chunks within this many dB of the loudest.
GATE_DB = 30.0


@dataclass
class EvalTrack:
    """One decoded track: `voiced` flags each 1 s chunk (embedder chunking) as sung or not."""

    track_id: str
    artist: str
    gender: str
    song: str
    mixture: np.ndarray
    vocals: np.ndarray | None
    voiced: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.voiced)


def n_chunks(n_samples: int) -> int:
    """Chunks `model.embedder.chunk` makes of `n_samples`: whole seconds + a >= 0.5 s tail."""
    full, tail = divmod(n_samples, CHUNK)
    return full + (1 if tail >= MIN_TAIL or full == 0 else 0)


def read_audio(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz through model.audio, imported here so that merely importing the
    harness never needs the decoder."""
    from model.audio import load

    return load(path, max_seconds=3600.0, allow_silent=True)


def activity_chunks(frames: np.ndarray, count: int) -> np.ndarray:
    """Per-chunk singing flags from 20 ms-hop activity frames (frame i centred at 20 i + 20 ms)."""
    hop = int(ACTIVITY_HOP_S * SAMPLE_RATE)
    centres = np.arange(len(frames)) * hop + hop
    index = np.minimum(centres // CHUNK, count - 1)
    sung = np.bincount(index, weights=frames.astype(float), minlength=count)
    total = np.bincount(index, minlength=count)
    return (sung / np.maximum(total, 1)) >= SUNG_SHARE


def energy_chunks(wave: np.ndarray, count: int) -> np.ndarray:
    """Per-chunk flags from the energy of a vocals stem: within GATE_DB of the loudest chunk."""
    padded = np.zeros(count * CHUNK, dtype=np.float64)
    padded[: min(len(wave), len(padded))] = wave[: len(padded)]
    rms = np.sqrt(np.mean(padded.reshape(count, CHUNK) ** 2, axis=1))
    if rms.max() <= 0:
        return np.ones(count, dtype=bool)
    return 20 * np.log10(np.maximum(rms, 1e-12) / rms.max()) > -GATE_DB


def load_track(track: Track) -> EvalTrack:
    """Decode one manifest row: mixture = vocals + accompaniment trimmed to the shorter, or the
    row's mixture file; a vocals-only row (an a cappella take) is its own mixture, so a corpus
    of isolated voices is scored by the same code (mix->mix then equals vocals->vocals)."""
    vocals = read_audio(track.vocals) if track.vocals is not None else None
    if track.accompaniment is not None and vocals is not None:
        acc = read_audio(track.accompaniment)
        n = min(len(vocals), len(acc))
        vocals, mixture = vocals[:n], vocals[:n] + acc[:n]
    elif track.mixture is not None:
        mixture = read_audio(track.mixture)
    elif vocals is not None:
        mixture = vocals
    else:
        raise ValueError(f"track {track.track_id}: no mixture, stems or vocals to decode")
    count = n_chunks(len(mixture))
    if track.vocal_activity is not None and track.vocal_activity.is_file():
        voiced = activity_chunks(read_activity(track.vocal_activity), count)
    elif vocals is not None:
        voiced = energy_chunks(vocals, count)
    else:
        voiced = np.ones(count, dtype=bool)
    if not voiced.any():
        voiced = np.ones(count, dtype=bool)  # keep instrumental-only tracks embeddable
    return EvalTrack(track.track_id, track.artist, track.gender, track.song, mixture, vocals,
                     voiced)


def select(tracks: list[Track], artists: Iterable[str] | None = None,
           exclude: Iterable[str] | None = None) -> list[Track]:
    """Keep only `artists` (if given) and drop `exclude`: singer-disjoint evaluation."""
    keep = set(artists) if artists else None
    drop = set(exclude or ())
    return [t for t in tracks
            if t.artist and (keep is None or t.artist in keep) and t.artist not in drop]


def load_corpus(manifest: str | Path, artists: Iterable[str] | None = None,
                exclude: Iterable[str] | None = None,
                progress: Callable[[list], Iterable] = iter) -> list[EvalTrack]:
    """Read the manifest, filter singers and decode every remaining track."""
    tracks = select(read_manifest(manifest), artists, exclude)
    if not tracks:
        raise ValueError(f"{manifest}: no tracks left after the singer filter")
    return [load_track(t) for t in progress(tracks)]


def without_artists(corpus: list[EvalTrack], artists: Iterable[str]) -> list[EvalTrack]:
    """The decoded corpus minus some singers (a checkpoint's training singers), no re-decoding."""
    drop = set(artists)
    return [t for t in corpus if t.artist not in drop]
