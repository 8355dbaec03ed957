"""Uploaded audio on disk: content-addressed storage under `<data dir>/audio`, and the checks
that decide which registered file the service may stream.

Why content-addressed: the same bytes uploaded twice are stored once, and a file name chosen by
a client never becomes a path (it only lends a known extension). Why the path checks: a row's
`source` is a path the service will open and stream, so a planted symlink under the data dir
must not lead outside it, a relative source must not climb out of it, and URIs are never
followed.

Files inside the data dir (uploads, the demo catalog) are recorded relative to it, so a data
dir can be moved or mounted elsewhere (another container, another machine) and its audio still
plays; files outside it (a catalog on a shared disk) keep their absolute path.
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

    def source_of(self, path: Path) -> str:
        """How a row records `path`: relative to the data dir when inside it, else absolute."""
        path, home = Path(path).absolute(), self.data_dir.absolute()
        if path.is_relative_to(home):
            return path.relative_to(home).as_posix()
        resolved, real_home = path.resolve(), home.resolve()
        if resolved.is_relative_to(real_home):
            return resolved.relative_to(real_home).as_posix()
        return str(resolved)

    def _registered(self, source: str) -> Path | None:
        """The path a row's `source` names (None for URIs and empty sources)."""
        if not source or "://" in source:
            return None
        registered = Path(source)
        return registered if registered.is_absolute() else self.data_dir / registered

    def owns(self, path: Path) -> bool:
        """Whether `path` is one of the stored uploads (only those are ever deleted)."""
        return path.resolve().parent == self.folder.resolve()

    def discard(self, source: str) -> None:
        """Delete a stored upload no row uses any more; other files are never touched."""
        path = self._registered(source)
        if path is not None and self.owns(path):
            path.unlink(missing_ok=True)

    def readable(self, source: str) -> Path | None:
        """The registered audio file `source`, resolved, if the service may stream it: None for
        URIs, missing files, relative sources that climb out of the data dir, and files
        registered inside the data dir that resolve outside it (a planted symlink)."""
        registered = self._registered(source)
        if registered is None:
            return None
        path, home = registered.resolve(), self.data_dir.resolve()
        inside = not Path(source).is_absolute() or registered.is_relative_to(home)
        if inside and not path.is_relative_to(home):
            return None
        return path if path.is_file() else None
