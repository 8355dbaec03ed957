"""The one manifest format that training, indexing and evaluation read (docs/manifest.md).

A CSV with a header; paths are relative to the CSV's folder (or absolute). Column aliases let
MIR-1K's `clips.csv` be read as it is: clip_id -> track_id, singer -> artist, song_id -> song.
A row holds a mixture, or vocals + accompaniment stems, or vocals alone (an isolated voice:
training lays it over other rows' accompaniment; indexing and evaluation take it as its own
mixture). Several manifests are read together by `read_manifests`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ALIASES = {"clip_id": "track_id", "id": "track_id", "singer": "artist", "song_id": "song"}
PATH_COLUMNS = ("vocals", "accompaniment", "mixture", "vocal_activity")
KNOWN = {"track_id", "artist", "gender", "song", "title", *PATH_COLUMNS}
#: Vocal-activity files: one 0/1 per line for 40 ms frames with a 20 ms hop (MIR-1K's layout).
ACTIVITY_HOP_S = 0.02


class ManifestError(ValueError):
    """A manifest problem, always naming the file and the row (1-based, header = row 1)."""


@dataclass(frozen=True)
class ManifestTrack:
    """One manifest row. `row` is the CSV line number, for error messages."""

    track_id: str
    artist: str
    row: int
    gender: str = ""
    song: str = ""
    title: str = ""
    vocals: Path | None = None
    accompaniment: Path | None = None
    mixture: Path | None = None
    vocal_activity: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: Training-only copies of a voice (model/data/voice_shift.py): its vocals are played this
    #: many times faster, and it follows its source singer and track in train/validation splits.
    speed: float = 1.0
    source_artist: str = ""
    source_track: str = ""

    @property
    def held_out_as(self) -> str:
        """The singer whose split this row follows: its source's for a shifted copy."""
        return self.source_artist or self.artist

    @property
    def split_key(self) -> str:
        """The track whose side of a random split this row follows (its source's for a copy)."""
        return self.source_track or self.track_id

    @property
    def has_stems(self) -> bool:
        return self.vocals is not None and self.accompaniment is not None

    @property
    def has_mixture(self) -> bool:
        return self.mixture is not None or self.has_stems

    @property
    def vocals_only(self) -> bool:
        """An isolated voice: vocals with neither accompaniment nor mixture."""
        return self.vocals is not None and self.accompaniment is None and self.mixture is None


def _resolve(base: Path, value: str) -> Path | None:
    value = value.strip()
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else base / path


def _row_to_track(base: Path, row: dict[str, str], line: int, where: str) -> ManifestTrack:
    tid = row.get("track_id", "").strip()
    if not tid:
        raise ManifestError(f"{where}: row {line}: empty track_id")
    paths = {name: _resolve(base, row.get(name, "") or "") for name in PATH_COLUMNS}
    if paths["mixture"] is None and paths["vocals"] is None:
        raise ManifestError(
            f"{where}: row {line} ({tid}): needs a mixture, vocals + accompaniment, or vocals")
    extra = {k: v for k, v in row.items() if k not in KNOWN and v is not None}
    return ManifestTrack(track_id=tid, artist=(row.get("artist") or "").strip(), row=line,
                         gender=(row.get("gender") or "").strip().lower(),
                         song=(row.get("song") or "").strip(),
                         title=(row.get("title") or "").strip(), extra=extra, **paths)


def read_manifest(path: str | Path) -> list[ManifestTrack]:
    """Parse a manifest CSV; raises ManifestError naming the row for malformed rows."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise ManifestError(f"{path}: empty manifest (no header)")
        names = [ALIASES.get(n.strip(), n.strip()) for n in reader.fieldnames]
        if "track_id" not in names:
            raise ManifestError(f"{path}: header needs a track_id (or clip_id) column")
        tracks: list[ManifestTrack] = []
        seen: dict[str, int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {names[i]: v for i, v in enumerate(raw.values()) if i < len(names)}
            track = _row_to_track(path.parent, row, line, str(path))
            if track.track_id in seen:
                raise ManifestError(f"{path}: row {line}: track_id {track.track_id!r} "
                                    f"repeats row {seen[track.track_id]}")
            seen[track.track_id] = line
            tracks.append(track)
    if not tracks:
        raise ManifestError(f"{path}: the manifest has no rows")
    return tracks


def read_manifests(paths: list[str | Path] | str | Path) -> list[ManifestTrack]:
    """Rows of several manifests, in order; a track_id may appear in only one of them."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    tracks: list[ManifestTrack] = []
    first: dict[str, Path] = {}
    for path in paths:
        for t in read_manifest(path):
            if t.track_id in first:
                raise ManifestError(f"{path}: row {t.row}: track_id {t.track_id!r} is also in "
                                    f"{first[t.track_id]}")
            first[t.track_id] = Path(path)
            tracks.append(t)
    return tracks


def check_tracks(tracks: list[ManifestTrack], *, need_stems: bool, need_artist: bool,
                 where: str = "manifest", allow_vocals_only: bool = False) -> None:
    """Fail before any work starts if a row lacks a file, stems or an artist it needs
    (`allow_vocals_only`: a row of vocals alone is fine for systems that mix their own)."""
    problems: list[str] = []
    for t in tracks:
        if need_stems and not t.has_stems and not (allow_vocals_only and t.vocals_only):
            problems.append(f"row {t.row} ({t.track_id}): needs vocals and accompaniment stems")
        if need_artist and not t.artist:
            problems.append(f"row {t.row} ({t.track_id}): has no artist, which this "
                            "label-informed system needs")
        for name in PATH_COLUMNS:
            p = getattr(t, name)
            if p is not None and not p.is_file():
                problems.append(f"row {t.row} ({t.track_id}): {name} file not found: {p}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ManifestError(f"{where}: {len(problems)} problem(s):\n  {shown}{more}")


def read_activity(path: Path) -> np.ndarray:
    """Frame flags (20 ms hop) from a vocal-activity file; whitespace-separated 0/1 values."""
    values = path.read_text().split()
    return np.array([v.strip() not in ("0", "0.0") for v in values], dtype=bool)


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows (dicts with the manifest's column names) as a manifest CSV."""
    columns = ["track_id", "artist", "gender", "song", "title", *PATH_COLUMNS]
    extra = sorted({k for r in rows for k in r} - set(columns))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns + extra)
        writer.writeheader()
        writer.writerows(rows)
