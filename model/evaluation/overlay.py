"""The RAVDESS fold's test data: a cappella sung takes laid over MIR-1K dev accompaniment.

voices-extra has no mixtures, and a fold that tests only clean vocals cannot tell a model that
hears the voice through the band from one that does not. So every sung take of RAVDESS actors
9-16 gets its own accompaniment file, cut from a MIR-1K dev accompaniment stem; the evaluation
harness then builds mixture = vocals + accompaniment as for MIR-1K. The rule is fixed and
depends on nothing but the clip id, so the files can be rebuilt byte for byte:

- stem: digest = SHA-256 of the UTF-8 clip id; MIR-1K dev rows sorted by clip id; the stem is
  row `int(digest[0:8]) % rows` (big-endian). A stem whose cut would be digital silence
  (RMS < 1e-5) is skipped for the next row, cyclically.
- cut: as long as the vocal take, from sample `int(digest[8:16]) % (stem - vocal + 1)`; a stem
  shorter than the take is looped (tiled from its start) to the take's length.
- level: the cut is scaled so that its RMS over the whole cut equals the RMS of the whole vocal
  take (vocal-to-accompaniment ratio 0 dB), then clipped to [-1, 1] (never reached on this data:
  the takes sit near -40 dBFS) and written as 16-bit FLAC, 16 kHz mono.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from model.audio.signal import SAMPLE_RATE
from model.data.manifest import read_manifest, write_manifest
from model.evaluation.folds import RAVDESS_TEST
from model.files import atomic_write_bytes

#: Vocal-to-accompaniment level of the overlay, dB (RMS over each whole clip).
VOCAL_TO_ACCOMPANIMENT_DB = 0.0
SILENT_RMS = 1e-5
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class Placement:
    """Where one take's accompaniment comes from: a stem, a start sample, a gain."""

    stem: str  # the MIR-1K dev clip id whose accompaniment was cut
    offset: int
    gain_db: float
    looped: bool


def _digest(clip_id: str) -> tuple[int, int]:
    d = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return int.from_bytes(d[0:8], "big"), int.from_bytes(d[8:16], "big")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def cut(stem: np.ndarray, length: int, key: int) -> tuple[np.ndarray, int, bool]:
    """`length` samples of `stem` from a start chosen by `key`; looped when the stem is short."""
    if len(stem) >= length:
        offset = key % (len(stem) - length + 1)
        return stem[offset:offset + length], offset, False
    return np.resize(stem, length), 0, True  # np.resize tiles from the start


def place(clip_id: str, vocal: np.ndarray, stems: list[str],
          load_stem: Callable[[str], np.ndarray]) -> tuple[np.ndarray, Placement]:
    """The accompaniment for one take (same length, 0 dB to it) and where it came from."""
    first, key = _digest(clip_id)
    target = _rms(vocal) * 10 ** (-VOCAL_TO_ACCOMPANIMENT_DB / 20)
    for step in range(len(stems)):
        name = stems[(first + step) % len(stems)]
        piece, offset, looped = cut(load_stem(name), len(vocal), key)
        level = _rms(piece)
        if level >= SILENT_RMS:
            gain = target / level
            out = np.clip(piece.astype(np.float64) * gain, -1.0, 1.0).astype(np.float32)
            return out, Placement(name, offset, round(20 * np.log10(max(gain, 1e-12)), 2),
                                  looped)
    raise ValueError("every accompaniment stem is silent")


def flac_bytes(wave: np.ndarray) -> bytes:
    """16-bit FLAC, 16 kHz mono; libsndfile writes no timestamp, so equal input, equal bytes."""
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Leave an identical file untouched (its mtime too), so re-runs change nothing."""
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def sung_takes(voices_csv: Path, singers: Iterable[str] = RAVDESS_TEST) -> list[dict[str, str]]:
    """voices-extra rows of `singers` whose kind is `sung`, sorted by clip id."""
    keep = set(singers)
    with voices_csv.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["singer"] in keep and r["kind"] == "sung"]
    return sorted(rows, key=lambda r: r["clip_id"])


def build_overlay(voices_csv: str | Path, accompaniment_csv: str | Path, out: str | Path,
                  singers: Iterable[str] = RAVDESS_TEST,
                  progress: Callable[[list], Iterable] = iter) -> Path:
    """Write `out/accompaniment/<clip_id>.flac` for every sung take of `singers` and
    `out/manifest.csv` (track_id, artist, gender, song, vocals, accompaniment + provenance);
    returns the manifest path. Vocals stay where they are (absolute paths)."""
    from model.audio.decode import load  # lazy: importing the harness needs no decoder

    voices_csv, out = Path(voices_csv).resolve(), Path(out)
    takes = sung_takes(voices_csv, singers)
    if not takes:
        raise ValueError(f"{voices_csv}: no sung takes of {', '.join(sorted(set(singers)))}")
    by_id = {t.track_id: t.accompaniment for t in read_manifest(accompaniment_csv)
             if t.accompaniment is not None}
    stems = sorted(by_id)
    if not stems:
        raise ValueError(f"{accompaniment_csv}: no accompaniment stems")
    cache: dict[str, np.ndarray] = {}

    def load_stem(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load(by_id[name], max_seconds=3600.0, allow_silent=True)
        return cache[name]

    (out / "accompaniment").mkdir(parents=True, exist_ok=True)
    rows = []
    for take in progress(takes):
        vocals = (voices_csv.parent / take["vocals"]).resolve()
        wave, where = place(take["clip_id"], load(vocals, allow_silent=True), stems, load_stem)
        rel = Path("accompaniment") / f"{take['clip_id']}.flac"
        _write_if_changed(out / rel, flac_bytes(wave))
        rows.append({"track_id": take["clip_id"], "artist": take["singer"],
                     "gender": take["gender"], "song": take["song_id"], "vocals": str(vocals),
                     "accompaniment": rel.as_posix(), "accompaniment_stem": where.stem,
                     "accompaniment_offset": str(where.offset),
                     "accompaniment_gain_db": f"{where.gain_db:.2f}",
                     "accompaniment_looped": str(int(where.looped))})
    manifest = out / MANIFEST
    tmp = out / (MANIFEST + ".new")  # write_manifest wants a path; compare before replacing
    write_manifest(tmp, rows)
    _write_if_changed(manifest, tmp.read_bytes())
    tmp.unlink()
    return manifest
