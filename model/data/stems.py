"""The one way stems become a mixture: trim to the shortest stem, then add sample by sample.

Training's bank, evaluation's corpus and the catalog job all read a manifest row through
`row_stems`, so "mixture = vocals + accompaniment" means the same samples everywhere; a
vocals-only row (an isolated voice) is its own mixture over a silent accompaniment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from model.data.manifest import ManifestTrack


def trimmed(stems: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The stems cut to the length of the shortest."""
    n = min(len(s) for s in stems)
    return [s[:n] for s in stems]


def sum_stems(stems: Sequence[np.ndarray]) -> np.ndarray:
    """Sample-by-sample float32 sum of the stems, trimmed to the shortest."""
    return np.sum(trimmed(stems), axis=0, dtype=np.float32)


def row_stems(track: ManifestTrack, read: Callable[[Path], np.ndarray]) -> dict[str, np.ndarray]:
    """A manifest row's stems, decoded by `read`, all of one length: "mixture" always (the
    row's mixture file if given, else vocals + accompaniment), "vocals" and "accompaniment"
    when the row has vocals (a vocals-only row gets a silent accompaniment)."""
    out = {stem: read(path) for stem in ("vocals", "accompaniment", "mixture")
           if (path := getattr(track, stem)) is not None}
    if track.vocals_only:
        out["accompaniment"] = np.zeros_like(out["vocals"])
        out["mixture"] = out["vocals"].copy()
    if "vocals" in out and "accompaniment" in out:
        out["vocals"], out["accompaniment"] = trimmed([out["vocals"], out["accompaniment"]])
        out.setdefault("mixture", out["vocals"] + out["accompaniment"])
    if "mixture" not in out:
        raise ValueError(f"track {track.track_id}: no mixture, stems or vocals to decode")
    n = min(len(v) for v in out.values())
    return {k: v[:n] for k, v in out.items()}
