"""The bundled default model (see README.md beside it) and its optional vocal gate."""

from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).with_name("cvsm-default.pt")
#: The vocal-activity gate trained for it (model/inference/gate.py).
DEFAULT_GATE = Path(__file__).with_name("vocal-gate.json")


def default_checkpoint() -> Path:
    """Path of the shipped inference checkpoint; raises if the package was built without it."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise FileNotFoundError(f"bundled model missing: {DEFAULT_CHECKPOINT}")
    return DEFAULT_CHECKPOINT
