"""Fixtures shared by the service tests (imported by those modules, not a conftest, so the
other suites do not pay for them): the model, a seeded catalog folder, test clips."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from index.job import JobConfig, run_index
from model.audio.encode import encode
from model.data.manifest import read_manifest
from model.inference.embedder import Embedder

SR = 16_000
LEAKS = ("Traceback", "/tmp", "/work", "File \"", ".py\"")


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory, synth_manifest: Path, embedder: Embedder) -> Path:
    """A data dir whose SQLite catalog holds the 12 synthetic tracks (copied per server)."""
    data_dir = tmp_path_factory.mktemp("seeded")
    job = JobConfig(catalog=synth_manifest, data_dir=data_dir, progress=False)
    assert run_index(job, embedder).indexed == 12
    return data_dir


def copy_data_dir(seeded: Path, dest: Path) -> Path:
    shutil.copytree(seeded, dest)
    return dest


def wav_bytes(samples: np.ndarray, rate: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def mixture_of(manifest: Path, index: int = 0) -> tuple[str, Path]:
    """(track id, mixture path) of a manifest row."""
    track = read_manifest(manifest)[index]
    return track.track_id, track.mixture


def mp3_of(path: Path) -> bytes:
    samples, rate = sf.read(path, dtype="float32")
    return encode(samples, rate, "mp3")


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The JSON error shape, the status, and no stack trace or path in the body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    for leak in LEAKS:
        assert leak not in resp.text, resp.text
    return body


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db_url(request):
    """"" (SQLite in the data dir), or a throw-away PostgreSQL schema (tests/conftest.py's
    `pg_schema`; skipped when unreachable)."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("pg_schema")()
