"""The bundled default model (see README.md beside it), its optional vocal gate and its
score calibration."""

from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).with_name("cvsm-default.pt")
#: The vocal-activity gate trained for it (model/inference/gate.py).
DEFAULT_GATE = Path(__file__).with_name("vocal-gate.json")
#: The learned singing detector on its chunk embeddings (model/inference/singing_head.py).
DEFAULT_SINGING_HEAD = Path(__file__).with_name("singing-head.json")
#: Its cosine -> P(same singer) curve, fitted on unseen singers (`cvsm calibrate`).
DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")
#: The same for its separated vectors (`--separation on`: two cosines joined, another scale).
SEPARATED_CALIBRATION = Path(__file__).with_name("calibration-separated.json")


def default_checkpoint() -> Path:
    """Path of the shipped inference checkpoint; raises if the package was built without it."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise FileNotFoundError(f"bundled model missing: {DEFAULT_CHECKPOINT}")
    return DEFAULT_CHECKPOINT
