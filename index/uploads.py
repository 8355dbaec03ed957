"""Uploaded audio on disk: content-addressed storage under `<data dir>/audio`, and the checks
that decide which registered file the service may stream.

Why content-addressed: the same bytes uploaded twice are stored once, and a file name chosen by
a client never becomes a path (it only lends a known extension). Why the path checks: a row's
`source` is a path the service will open and stream, so a planted symlink under the data dir
must not lead outside it, and URIs or relative paths are never followed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from model.audio.decode import AUDIO_EXTENSIONS
from model.files import atomic_write_bytes

AUDIO_DIR = "audio"


def content_digest(data: bytes) -> str:
    """The content hash of an upload: sha256 hex, as `index.sources.content_hash` of a file."""
    return hashlib.sha256(data).hexdigest()


class UploadStore:
    """Uploaded files of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / AUDIO_DIR

    def store(self, data: bytes, digest: str, filename: str) -> Path:
        """The (resolved) path of the stored copy of `data`, written once per content."""
        ext = Path(re.sub(r"[^A-Za-z0-9._-]", "", filename or "")).suffix.lower()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder.resolve() / f"{digest}{ext if ext in AUDIO_EXTENSIONS else '.bin'}"
        if path.is_symlink() or not path.is_file():  # a planted link is replaced, not followed
            atomic_write_bytes(path, data)  # the rename replaces a link; no partial file left
        return path

    def owns(self, path: Path) -> bool:
        """Whether `path` is one of the stored uploads (only those are ever deleted)."""
        return path.resolve().parent == self.folder.resolve()

    def discard(self, source: str) -> None:
        """Delete a stored upload no row uses any more; other files are never touched."""
        path = Path(source)
        if self.owns(path):
            path.unlink(missing_ok=True)

    def readable(self, source: str) -> Path | None:
        """The registered audio file `source`, resolved, if the service may stream it: None for
        URIs, relative paths, missing files, and files registered inside the data dir that
        resolve outside it (a planted symlink)."""
        if not source or "://" in source:
            return None
        registered = Path(source)
        if not registered.is_absolute():
            return None
        path, home = registered.resolve(), self.data_dir.resolve()
        if registered.is_relative_to(home) and not path.is_relative_to(home):
            return None
        return path if path.is_file() else None
