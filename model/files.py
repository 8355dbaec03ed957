"""The one way the project writes a file or publishes a folder: never half of one.

Checkpoints, exports, FAISS files and their manifests, ONNX caches, uploads, caches of decoded
audio and teacher targets all go through here. A file is written beside its target, flushed to
disk, then renamed over it, so a reader (or a crash) sees the old file or the new one. A folder
is built aside and renamed into place; the first finished one wins a race between processes.
Standard library only: the index and the CLIs import this without loading torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_target(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer that wants a file name (FAISS, ONNX,
    torch); on a clean exit it is synced, given `mode` and renamed over `path`, on an error
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, mode)  # mkstemp's 0600 would hide shared caches from other users
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy `src` over `dst` atomically (e.g. last.pt -> best.pt)."""
    with atomic_target(dst) as tmp:
        shutil.copyfile(src, tmp)


def publish_dir(tmp: Path, root: Path, done: str = "done.json") -> None:
    """Rename a finished folder `tmp` into place at `root`. If another process finished `root`
    first (it holds `done`), ours is dropped; an unfinished `root` (a crash) is replaced."""
    try:
        os.rename(tmp, root)
        return
    except OSError:
        if (root / done).is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            return
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
