"""What a catalog is made of: items read from a manifest CSV or a folder of audio files, their
content hashes, shard membership, and the decoding that worker processes run.

Nothing here imports torch, so decoding workers start fast and never inherit its thread pools.
A manifest row's audio is its `mixture` file, or vocals + accompaniment summed sample by sample
(trimmed to the shorter); a folder's files are tracks whose id is the path relative to the folder
and whose title/artist come from the container tags, else from an "Artist - Title" file name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from model.audio.decode import AUDIO_EXTENSIONS, AudioError, decode
from model.data.manifest import read_manifest
from model.data.stems import sum_stems

MAX_SECONDS = 1800.0
UNCHANGED, READY, FAILED = "unchanged", "ready", "failed"


@dataclass(frozen=True)
class CatalogItem:
    """One track to index: a single mixture file, or (vocals, accompaniment) to be summed."""

    track_id: str
    files: tuple[Path, ...]
    title: str = ""
    artist: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    from_tags: bool = False

    @property
    def source(self) -> str:
        return str(self.files[0])


@dataclass
class Prepared:
    """A worker's answer for one item: unchanged (same hash), ready (samples), or failed."""

    item: CatalogItem
    status: str
    content_hash: str = ""
    samples: np.ndarray | None = None
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def read_catalog(path: Path) -> list[CatalogItem]:
    """Items of a manifest CSV, or of every audio file below a folder (sorted, stable ids)."""
    path = Path(path)
    if path.is_dir():
        return scan_folder(path)
    items = []
    for t in read_manifest(path):
        stems = (t.vocals, t.accompaniment)  # vocals alone: an a cappella track
        files = (t.mixture,) if t.mixture is not None else tuple(f for f in stems if f)
        meta = {k: v for k, v in {"gender": t.gender, "song": t.song, **t.extra}.items() if v}
        items.append(CatalogItem(t.track_id, files, t.title or t.track_id, t.artist, meta))
    return items


def scan_folder(folder: Path) -> list[CatalogItem]:
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    return [_item_from_name(folder, p) for p in files]


def _item_from_name(folder: Path, path: Path) -> CatalogItem:
    artist, _, title = path.stem.partition(" - ")
    if not title:
        artist, title = "", path.stem
    return CatalogItem(path.relative_to(folder).as_posix(), (path.resolve(),), title.strip(),
                       artist.strip(), {"file": path.name}, from_tags=True)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """"K/N" (0 <= K < N) -> (K, N); None -> (0, 1)."""
    if not spec:
        return 0, 1
    k, _, n = spec.partition("/")
    try:
        shard, count = int(k), int(n)
    except ValueError:
        raise ValueError(f"--shard must look like K/N, got {spec!r}") from None
    if not 0 <= shard < count:
        raise ValueError(f"--shard {spec}: need 0 <= K < N")
    return shard, count


def in_shard(track_id: str, shard: int, count: int) -> bool:
    """Deterministic slice by a hash of the track id (the same on every machine)."""
    digest = hashlib.sha1(track_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == shard


def content_hash(files: tuple[Path, ...]) -> str:
    """sha256 over the bytes of the item's files, in order."""
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def prepare(item: CatalogItem, known_hash: str | None) -> Prepared:
    """Worker task: hash the files; if the hash equals `known_hash` stop there, else decode.
    Failures come back as data (the job records them and goes on)."""
    try:
        digest = content_hash(item.files)
    except OSError as exc:
        return Prepared(item, FAILED, error=f"cannot read: {exc.strerror or exc}")
    if digest == known_hash:
        return Prepared(item, UNCHANGED, digest)
    try:
        samples = load_samples(item.files)
    except AudioError as exc:
        return Prepared(item, FAILED, digest, error=f"{exc.code}: {exc}")
    tags = read_tags(item.files[0]) if item.from_tags else {}
    return Prepared(item, READY, digest, samples, tags=tags)


def load_samples(files: tuple[Path, ...]) -> np.ndarray:
    """Mono 16 kHz: the mixture, or the stems summed sample by sample, trimmed to the shorter."""
    if len(files) == 1:
        return decode(files[0], max_seconds=MAX_SECONDS).samples
    return sum_stems([decode(f, max_seconds=MAX_SECONDS, allow_silent=True).samples
                      for f in files])


def read_tags(path: Path) -> dict[str, str]:
    """Container tags (title, artist, album, ...), lower-cased keys; {} when unreadable."""
    try:
        with av.open(str(path)) as container:
            tags = dict(container.metadata)
            if container.streams.audio:
                tags = {**container.streams.audio[0].metadata, **tags}
    except (av.error.FFmpegError, OSError):
        return {}
    return {k.lower(): str(v) for k, v in tags.items() if str(v).strip()}
