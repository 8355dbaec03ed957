"""The package version, written once (pyproject.toml) and read from the installed metadata.

`cvsm --version`, the service's OpenAPI version and the `code_version` stored in checkpoints all
use `VERSION`. Stdlib only, so the CLI can print it without loading torch.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

DISTRIBUTION = "cvsm"
#: When the package is neither installed nor a source checkout.
UNKNOWN = "0+unknown"


def package_version() -> str:
    """The installed distribution's version; in an uninstalled checkout, pyproject.toml's."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    import tomllib  # only in an uninstalled checkout

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN


VERSION = package_version()
