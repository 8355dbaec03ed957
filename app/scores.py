"""Scores people can read: the served model's calibration curve (docs/design.md, Calibration).

The curve belongs to one model: it is used only when its fingerprint names the weights being
served (the backend or vocal-gate suffix of a fingerprint aside: those change vectors by
rounding, not their scale) and the same separation mark (`+s...`: separated vectors join two
cosines, another scale). Without a matching curve, hits carry the cosine alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model.evaluation.calibration import Calibration, label
from model.weights import DEFAULT_CALIBRATION, SEPARATED_CALIBRATION

log = logging.getLogger(__name__)


def load_calibration(path: Path | None, fingerprint: str) -> Calibration | None:
    """The curve at `path` (default: the bundled one for separated or plain vectors) if it was
    fitted for `fingerprint`."""
    separated = len(_scale(fingerprint)) > 1
    chosen = path or (SEPARATED_CALIBRATION if separated else DEFAULT_CALIBRATION)
    if not chosen.is_file():
        if path is not None:
            log.warning("calibration %s not found: results carry the cosine only", path)
        return None
    curve = Calibration.load(chosen)
    if _scale(curve.fingerprint) != _scale(fingerprint):
        if path is not None:
            log.warning("calibration %s was fitted for model %s, not %s: ignored", path,
                        curve.fingerprint, fingerprint)
        return None
    return curve


def _scale(fingerprint: str) -> tuple[str, ...]:
    """The parts of a fingerprint that set the cosine's scale: the model and its separation."""
    model, *marks = fingerprint.split("+")
    return (model, *(m for m in marks if m.startswith("s")))


def readable(curve: Calibration | None, cosine: float) -> dict[str, float | str | None]:
    """`same_singer` (probability) and `match` (its words) for one hit."""
    if curve is None:
        return {"same_singer": None, "match": None}
    p = float(curve.probability(cosine))
    return {"same_singer": round(p, 4), "match": label(p)}
