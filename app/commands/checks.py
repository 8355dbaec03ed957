"""User mistakes caught before a command creates anything: one line, exit status 2.

A wrong path or a malformed manifest is the user's to fix, not a crash: `cvsm` prints
`cvsm <command>: error: <what is wrong>: <how to fix it>` on stderr and exits 2, as argparse
does for a bad flag, and leaves no database or data folder behind (the checks run first).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings


class UserError(Exception):
    """A mistake the user can fix; its message names the problem and the fix."""


def model_file(settings: Settings) -> Path:
    """The model to load: the configured file, checked to exist, else the bundled one."""
    from model.weights import default_checkpoint

    path = settings.checkpoint
    if path is None:
        try:
            return default_checkpoint()
        except FileNotFoundError as exc:
            raise UserError(f"{exc}: reinstall cvsm, or give --checkpoint PT") from None
    if not path.is_file():
        raise UserError(f"model file {path} not found: give the model.pt (or last.pt) that "
                        "`cvsm train` wrote, or unset --checkpoint / CVSM_CHECKPOINT for the "
                        "bundled model")
    return path


def catalog_path(path: Path) -> Path:
    """A catalog that exists; a manifest CSV must also parse and list a track (ManifestError
    names a bad row). A folder is scanned once, by the job itself."""
    from model.data.manifest import read_manifest

    if not path.exists():
        raise UserError(f"catalog {path} not found: give a manifest CSV (docs/manifest.md) "
                        "or a folder of audio files")
    if path.is_file() and not read_manifest(path):
        raise UserError(f"catalog {path} lists no tracks: add rows as docs/manifest.md "
                        "describes")
    return path


def manifest_path(path: Path) -> Path:
    """A manifest CSV that exists (its rows are checked where they are read)."""
    if not path.is_file():
        raise UserError(f"manifest {path} not found: give a CSV as described in "
                        "docs/manifest.md")
    return path
