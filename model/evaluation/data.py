"""An evaluation corpus decoded once and held in memory: mixture, vocals and singing flags.

Several checkpoints (and baselines) are scored on the same corpus in one run, so decoding is
done here once. `model.audio.decode` is imported only when a file is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.audio.activity import FRAME, chunk_share, energy_activity
from model.audio.signal import SAMPLE_RATE, n_chunks
from model.data.manifest import ACTIVITY_HOP_S, ManifestTrack, read_activity, read_manifest
from model.data.stems import row_stems


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


def read_audio(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz through model.audio.decode, imported here so that merely importing the
    harness never needs the decoder."""
    from model.audio.decode import load

    return load(path, max_seconds=3600.0, allow_silent=True)


def sung_chunks(track: ManifestTrack, vocals: np.ndarray | None, count: int) -> np.ndarray:
    """Per-chunk singing flags by the one vocal-activity rule (model/audio/activity.py): the
    row's labels, else the energy rule on its vocals; every chunk when neither says anything
    (instrumental-only tracks stay embeddable)."""
    if track.vocal_activity is not None and track.vocal_activity.is_file():
        labels = read_activity(track.vocal_activity)
        hop = int(ACTIVITY_HOP_S * SAMPLE_RATE)
        voiced = chunk_share(labels, np.arange(len(labels)) * hop + hop, count)
    elif vocals is not None:
        flags = energy_activity(vocals)
        voiced = chunk_share(flags, np.arange(len(flags)) * FRAME + FRAME // 2, count)
    else:
        voiced = np.ones(count, dtype=bool)
    return voiced if voiced.any() else np.ones(count, dtype=bool)


def load_track(track: ManifestTrack) -> EvalTrack:
    """Decode one manifest row (model/data/stems.py: the mixture file, or vocals +
    accompaniment; a vocals-only row, an a cappella take, is its own mixture, so a corpus of
    isolated voices is scored by the same code: mix->mix then equals vocals->vocals)."""
    stems = row_stems(track, read_audio)
    vocals, mixture = stems.get("vocals"), stems["mixture"]
    voiced = sung_chunks(track, vocals, n_chunks(len(mixture)))
    return EvalTrack(track.track_id, track.artist, track.gender, track.song, mixture, vocals,
                     voiced)


def select(tracks: list[ManifestTrack], artists: Iterable[str] | None = None,
           exclude: Iterable[str] | None = None) -> list[ManifestTrack]:
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
