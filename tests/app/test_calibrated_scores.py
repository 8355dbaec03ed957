"""Search hits carry a calibrated same-singer probability when the served model has a curve,
and the cosine alone when the curve belongs to another model."""

from __future__ import annotations

import pytest

from app.settings import Settings
from model.evaluation.calibration import Calibration, label
from tests.live_server import LiveServer
from tests.service_fixtures import copy_data_dir


def _search(tmp_path, seeded_dir, embedder, init_checkpoint, curve: Calibration) -> list[dict]:
    path = tmp_path / "calibration.json"
    curve.save(path)
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "data"),
                        checkpoint=init_checkpoint, calibration=path, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, embedder) as live, live.client() as client:
        tracks = client.get("/v1/tracks").json()["items"]
        resp = client.post("/v1/search", data={"track_id": tracks[0]["id"], "k": "5"})
        resp.raise_for_status()
        return resp.json()["results"]


def test_hits_carry_the_calibrated_probability(tmp_path, seeded_dir, embedder,
                                               init_checkpoint) -> None:
    curve = Calibration(embedder.fingerprint, [-1.0, 0.0, 1.0], [0.0, 0.1, 0.9])
    hits = _search(tmp_path, seeded_dir, embedder, init_checkpoint, curve)
    assert hits
    for hit in hits:
        assert hit["same_singer"] == pytest.approx(float(curve.probability(hit["score"])),
                                                   abs=1e-3)
        assert hit["match"] == label(hit["same_singer"])


def test_a_curve_of_another_model_is_not_used(tmp_path, seeded_dir, embedder,
                                              init_checkpoint) -> None:
    curve = Calibration("0123456789abcdef", [0.0, 1.0], [0.0, 1.0])
    hits = _search(tmp_path, seeded_dir, embedder, init_checkpoint, curve)
    assert hits and all(h["same_singer"] is None and h["match"] is None for h in hits)
