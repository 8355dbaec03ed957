"""503 answers: a service that could not load, and a full embedding queue."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from app.settings import Settings
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, copy_data_dir, wav_bytes


def test_not_ready_until_loaded(tmp_path):
    """A missing model: alive (healthz), not ready, every API route 503, nothing leaked."""
    missing = tmp_path / "no-such-model.pt"
    settings = Settings(data_dir=tmp_path / "data", checkpoint=missing, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, wait_ready=False) as live, live.client() as c:
        assert c.get("/healthz").status_code == 200
        resp = c.get("/readyz")
        assert_error(resp, 503, "not_ready")
        assert "no-such-model" not in resp.text
        assert_error(c.get("/v1/tracks"), 503, "not_ready")
        search = c.post("/v1/search", files={"file": ("a.wav", b"RIFF")})
        assert_error(search, 503, "not_ready")
        assert search.headers["retry-after"] == "5"


def test_full_queue_is_503(tmp_path, seeded_dir, embedder, init_checkpoint):
    """One worker and no waiting line: simultaneous 30 s queries get 503 busy, not a pile-up."""
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "data"),
                        checkpoint=init_checkpoint, embed_workers=1, embed_queue=0,
                        refresh_seconds=0, _env_file=None)
    t = np.arange(30 * 16_000) / 16_000
    clip = wav_bytes((0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(t))).astype(np.float32))
    with LiveServer(settings, embedder) as live:
        def one(_: int) -> httpx.Response:
            with live.client() as c:
                return c.post("/v1/search", files={"file": ("q.wav", clip)})

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(one, range(6)))
        codes = sorted(r.status_code for r in answers)
        assert 200 in codes and 503 in codes, codes
        for r in answers:
            if r.status_code == 503:
                assert_error(r, 503, "busy")
                assert r.headers["retry-after"] == "1"
        with live.client() as c:
            assert c.post("/v1/search", files={"file": ("q.wav", clip)}).status_code == 200
            assert "cvsm_embed_rejected_total" in c.get("/metrics").text
