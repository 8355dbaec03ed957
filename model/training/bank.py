"""Training audio decoded once into a compact cache, then served as crops without re-decoding.

Every track's stems are decoded (in parallel processes) to 16 kHz and stored back to back in
float16 memmaps, one per stem (vocals, accompaniment, mixture), each track starting on a 10 ms
frame boundary. Beside them: per-frame energies (so the energy of any 5 s window, which the
per-segment L2 normalisation needs, is two lookups in a cumulative sum) and per-frame vocal
activity (from the manifest's activity files, else an energy gate on the vocal stem).

The cache folder is named by a fingerprint of the manifest rows and file sizes/mtimes, so a
changed catalog gets a new cache and a finished cache is reused by every run that reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.audio.activity import FRAME, energy_activity, frame_energy, labels_at
from model.audio.signal import SAMPLE_RATE
from model.data.manifest import ACTIVITY_HOP_S, ManifestError, ManifestTrack, read_activity
from model.data.stems import row_stems
from model.files import atomic_write_text, publish_dir

STEMS = ("vocals", "accompaniment", "mixture")
MIN_TRACK_S = 1.0


def data_fingerprint(tracks: list[ManifestTrack]) -> str:
    """Hash of what training reads: ids, labels and each file's size and mtime."""
    h = hashlib.sha256()
    for t in tracks:
        h.update(f"{t.track_id}|{t.artist}|{t.gender}|{t.song}".encode())
        if t.speed != 1.0:
            h.update(f"|speed={t.speed!r}".encode())
        for p in (t.vocals, t.accompaniment, t.mixture, t.vocal_activity):
            if p is not None:
                st = p.stat()
                h.update(f"|{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def _decode_track(track: ManifestTrack) -> dict[str, np.ndarray]:
    """Decode one row's stems (model/data/stems.py: mixture = vocals + accompaniment when not
    given; a vocals-only row is its own mixture over a silent accompaniment); a shifted copy
    of a voice is played at its speed (model/data/voice_shift.py)."""
    from model.audio.decode import AudioError, load
    from model.data.voice_shift import speed_shift

    def read(path: Path) -> np.ndarray:
        try:
            x = load(path, allow_silent=True, max_seconds=3600)
        except AudioError as exc:
            raise ManifestError(f"row {track.row} ({track.track_id}): cannot decode "
                                f"{path}: {exc}") from exc
        return x if track.speed == 1.0 else speed_shift(x, track.speed)

    return row_stems(track, read)


def _activity(track: ManifestTrack, vocals: np.ndarray | None, frames: int) -> np.ndarray:
    """Per-10 ms singing flags by the one rule (model/audio/activity.py)."""
    if track.vocal_activity is not None:
        centres = (np.arange(frames) * FRAME + FRAME // 2) / SAMPLE_RATE
        return labels_at(read_activity(track.vocal_activity), ACTIVITY_HOP_S, centres)
    if vocals is None:
        return np.ones(frames, bool)
    return energy_activity(vocals, frames)


@dataclass
class Bank:
    """Decoded training audio: stems, per-frame energy cumsums, activity, track table."""

    root: Path
    tracks: list[ManifestTrack]
    starts: np.ndarray    # sample offset of each track (multiple of FRAME)
    lengths: np.ndarray   # samples
    stems: dict[str, np.ndarray]       # float16 memmaps, one per available stem
    energy_cum: dict[str, np.ndarray]  # float64 cumsum of per-frame energy, leading 0
    activity: np.ndarray               # bool per frame
    fingerprint: str

    @property
    def artists(self) -> list[str]:
        return sorted({t.artist for t in self.tracks})

    @property
    def vocals_only(self) -> np.ndarray:
        """Per track: an isolated voice whose accompaniment stem is silence."""
        return np.array([t.vocals_only for t in self.tracks], dtype=bool)

    def window_energy(self, stem: str, start: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Energy of samples [start, start + length) per row (frame-quantised)."""
        cum = self.energy_cum[stem]
        a = start // FRAME
        b = (start + length + FRAME - 1) // FRAME
        return cum[b] - cum[a]

    def active_fraction(self, start: np.ndarray, length: int | np.ndarray) -> np.ndarray:
        """Share of sung 10 ms frames in [start, start + length) per row."""
        cum = self._activity_cum
        a = start // FRAME
        b = (start + length) // FRAME
        return (cum[b] - cum[a]) / np.maximum(b - a, 1)

    def __post_init__(self) -> None:
        self._activity_cum = np.concatenate([[0], np.cumsum(self.activity, dtype=np.int64)])


def build_bank(tracks: list[ManifestTrack], cache_dir: Path, workers: int = 2,
               quiet: bool = False) -> Bank:
    """Decode `tracks` into `cache_dir/<fingerprint>` once; later calls just open it."""
    fp = data_fingerprint(tracks)
    root = Path(cache_dir) / fp
    if not (root / "done.json").is_file():
        # Written aside and renamed into place: processes sharing a cache folder (concurrent
        # runs, DDP nodes) never read a half-written bank, whoever finishes first.
        tmp = Path(cache_dir) / f".{fp}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _write_cache(tracks, tmp, workers, quiet)
        publish_dir(tmp, root)
    return open_bank(root, tracks)


def _write_cache(tracks: list[ManifestTrack], root: Path, workers: int, quiet: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    decoded: list[dict[str, np.ndarray]] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = pool.map(_decode_track, tracks, chunksize=4)
        for item in tqdm(jobs, total=len(tracks), desc="decode stems", unit="track",
                         disable=quiet):
            decoded.append(item)
    lengths = np.array([len(next(iter(d.values()))) for d in decoded], dtype=np.int64)
    padded = (lengths + FRAME - 1) // FRAME * FRAME + FRAME  # a silent frame between tracks
    starts = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
    total = int(padded.sum())
    available = [s for s in STEMS if all(s in d for d in decoded)]
    for stem in available:
        mm = np.lib.format.open_memmap(root / f"{stem}.npy", "w+", np.float16, (total,))
        energy = np.zeros(total // FRAME, dtype=np.float64)
        for d, s in zip(decoded, starts, strict=True):
            x = d[stem]
            mm[s:s + len(x)] = x.astype(np.float16)
            e = frame_energy(x)
            energy[s // FRAME:s // FRAME + len(e)] = e
        mm.flush()
        del mm
        np.save(root / f"{stem}_energy.npy", energy)
    activity = np.zeros(total // FRAME, dtype=bool)
    for t, d, s, n in zip(tracks, decoded, starts, lengths, strict=True):
        frames = int(n // FRAME)
        activity[s // FRAME:s // FRAME + frames] = _activity(t, d.get("vocals"), frames)
    np.save(root / "activity.npy", activity)
    np.save(root / "starts.npy", starts)
    np.save(root / "lengths.npy", lengths)
    atomic_write_text(root / "done.json",
                      json.dumps({"tracks": len(tracks), "samples": total, "stems": available}))


def open_bank(root: Path, tracks: list[ManifestTrack]) -> Bank:
    meta = json.loads((root / "done.json").read_text())
    stems = {s: np.load(root / f"{s}.npy", mmap_mode="r") for s in meta["stems"]}
    energy = {s: np.concatenate([[0.0], np.cumsum(np.load(root / f"{s}_energy.npy"))])
              for s in meta["stems"]}
    return Bank(root=root, tracks=tracks, starts=np.load(root / "starts.npy"),
                lengths=np.load(root / "lengths.npy"), stems=stems, energy_cum=energy,
                activity=np.load(root / "activity.npy"), fingerprint=root.name)
