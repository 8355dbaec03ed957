"""The bundled default model (trained on MIR-1K dev, see README.md beside it)."""

from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).with_name("cvsm-default.pt")


def default_checkpoint() -> Path:
    """Path of the shipped inference checkpoint; raises if the package was built without it."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise FileNotFoundError(f"bundled model missing: {DEFAULT_CHECKPOINT}")
    return DEFAULT_CHECKPOINT
