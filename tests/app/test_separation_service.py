"""`--separation on` end to end: `cvsm index` and the service agree on it (CVSM_SEPARATION),
an index built without it is refused, and a clip with no voice in it answers "no singing
found" instead of a list of verdicts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.main import load_embedder, open_catalog
from app.settings import Settings
from index.vectors import ModelMismatchError
from model.data import synth
from model.inference.embedder import Embedder
from tests.live_server import LiveServer
from tests.service_fixtures import copy_data_dir, mixture_of, wav_bytes

SR = 16_000


@pytest.fixture(scope="module")
def separated_dir(tmp_path_factory, synth_manifest, init_checkpoint):
    """A data dir indexed by `cvsm index --separation on` (the real command)."""
    data_dir = tmp_path_factory.mktemp("separated") / "data"
    cmd = [sys.executable, "-m", "app.cli", "index", "--catalog", str(synth_manifest),
           "--data-dir", str(data_dir), "--checkpoint", str(init_checkpoint), "--device", "cpu",
           "--backend", "torch", "--separation", "on", "--workers", "1", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return data_dir


@pytest.fixture(scope="module")
def client(tmp_path_factory, separated_dir, init_checkpoint):
    settings = Settings(data_dir=copy_data_dir(separated_dir, tmp_path_factory.mktemp("s") / "d"),
                        checkpoint=init_checkpoint, separation=True, backend="torch",
                        device="cpu", refresh_seconds=0, seed_demo=False, _env_file=None)
    with LiveServer(settings) as live, live.client() as c:
        yield c


def _search(client, samples: np.ndarray):
    return client.post("/v1/search", files={"file": ("q.wav", wav_bytes(samples))},
                       data={"k": "5"})


def test_a_sung_clip_finds_its_track(client, synth_manifest):
    tid, path = mixture_of(synth_manifest, 0)
    resp = client.post("/v1/search", files={"file": ("q.wav", path.read_bytes())})
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["query"]["singing_found"] is True and body["query"]["selection"] == "singing"
    assert body["results"][0]["id"] == tid and body["query"]["note"] is None
    models = client.get("/v1/models").json()
    assert models[0]["fingerprint"].split("+")[1].startswith("s") and models[0]["dim"] % 2 == 0


@pytest.mark.parametrize("kind", ["white noise", "sine tone", "instrumental"])
def test_no_singing_found(client, kind):
    t = np.arange(6 * SR) / SR
    wave = {"white noise": 0.1 * np.random.default_rng(1).normal(size=len(t)),
            "sine tone": 0.3 * np.sin(2 * np.pi * 440 * t),
            "instrumental": synth.accompany(synth.make_song(2, 0), 6.0, 3)}[kind]
    resp = _search(client, np.clip(wave, -1, 1).astype(np.float32))
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["query"]["singing_found"] is False and body["results"] == []
    assert body["query"]["note"].startswith("no singing found")
    assert not any(body["query"]["used_seconds"])


def test_an_index_built_without_separation_is_refused(seeded_dir, init_checkpoint, tmp_path):
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "d"),
                        checkpoint=init_checkpoint, separation=True, backend="torch",
                        device="cpu", _env_file=None)
    with pytest.raises(ModelMismatchError, match="cvsm index"):
        open_catalog(settings, load_embedder(settings)).close()


def test_separation_is_part_of_the_fingerprint(init_checkpoint):
    plain = Embedder.from_checkpoint(init_checkpoint, "cpu", backend="torch")
    both = Embedder.from_checkpoint(init_checkpoint, "cpu", backend="torch", gate=True,
                                    separation=True)
    model_fp, gate, stage = both.fingerprint.split("+")
    assert model_fp == plain.fingerprint and gate.startswith("g") and stage.startswith("s")
    assert both.dim == 2 * plain.dim
    both.use_separation(None)
    assert both.fingerprint == f"{plain.fingerprint}+{gate}" and both.dim == plain.dim
