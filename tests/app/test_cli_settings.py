"""Every command reads the options it shares with the service from `Settings`: flag > CVSM_*
variable > .env file > default. The real `cvsm` runs as a subprocess on a tiny synthetic catalog
(2 singers x 1 song x 2 s), with the torch backend so no ONNX graph is exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from app.cli import build_parser
from app.commands.options import settings_from
from app.main import load_embedder, open_catalog
from app.settings import Settings
from index.schema import Track
from model.data.synth import generate
from model.inference.embedder import Embedder
from tests.conftest import PLAIN

ROOT = Path(__file__).resolve().parents[2]


def cvsm(*argv: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`cvsm ARGV` from `cwd` with only the given CVSM_* variables (none inherited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
    path = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    out = subprocess.run([sys.executable, "-m", "app.cli", *argv], cwd=cwd, text=True,
                         env={**base, "PYTHONPATH": path, **env}, capture_output=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("cat"), singers=2, songs=1, seconds=2.0, seed=4)


def tracks_in(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(Track))
    engine.dispose()
    return count


def index_fingerprint(data_dir: Path) -> str:
    return json.loads((data_dir / "index" / "index.json").read_text())["fingerprint"]


def test_index_reads_environment_and_serve_opens_it(tmp_path, catalog, init_checkpoint,
                                                    monkeypatch):
    """The issue's case: CVSM_VOCAL_GATE=true for both `cvsm index` and the service."""
    env = {"CVSM_DATA_DIR": str(tmp_path / "env-data"), "CVSM_VOCAL_GATE": "true",
           "CVSM_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}",
           "CVSM_CHECKPOINT": str(init_checkpoint), "CVSM_BACKEND": "torch",
           "CVSM_DEVICE": "cpu"}
    cvsm("index", "--catalog", str(catalog), "--workers", "1", "--no-progress", cwd=tmp_path,
         **env)
    gated = Embedder.from_checkpoint(init_checkpoint, "cpu", gate=True).fingerprint
    assert "+g" in gated and index_fingerprint(tmp_path / "env-data") == gated
    assert tracks_in(env["CVSM_DATABASE_URL"]) == 2
    assert not (tmp_path / "env-data" / "cvsm.db").exists()
    assert not (tmp_path / "data").exists()
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # what `cvsm serve` builds from the same environment
    catalog_view = open_catalog(settings, load_embedder(settings))  # no ModelMismatchError
    try:
        assert catalog_view.stats()["tracks"] == 2
    finally:
        catalog_view.close()


def test_index_flags_override_environment(tmp_path, catalog, init_checkpoint):
    env = {"CVSM_DATA_DIR": str(tmp_path / "env-data"), "CVSM_VOCAL_GATE": "true",
           "CVSM_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}", "CVSM_BACKEND": "onnx"}
    flag_db = f"sqlite:///{tmp_path / 'flag.db'}"
    cvsm("index", "--catalog", str(catalog), "--workers", "1", "--no-progress",
         "--data-dir", str(tmp_path / "flag-data"), "--db", flag_db, "--no-vocal-gate",
         "--checkpoint", str(init_checkpoint), "--backend", "torch", "--device", "cpu",
         cwd=tmp_path, **env)
    plain = Embedder.from_checkpoint(init_checkpoint, "cpu").fingerprint
    assert index_fingerprint(tmp_path / "flag-data") == plain
    assert tracks_in(flag_db) == 2
    assert not (tmp_path / "env-data").exists() and not (tmp_path / "env.db").exists()


def test_dotenv_in_working_directory(tmp_path):
    """`.env` is read; a CVSM_* variable beats it; a flag beats both."""
    (tmp_path / ".env").write_text(f"CVSM_DATA_DIR={tmp_path / 'dotenv-data'}\n"
                                   f"CVSM_DATABASE_URL=sqlite:///{tmp_path / 'dotenv.db'}\n")
    out = cvsm("migrate", cwd=tmp_path)
    assert (tmp_path / "dotenv.db").is_file() and "dotenv.db" in out.stdout
    cvsm("migrate", cwd=tmp_path, CVSM_DATABASE_URL=f"sqlite:///{tmp_path / 'env.db'}")
    assert (tmp_path / "env.db").is_file()
    cvsm("migrate", "--db", "", cwd=tmp_path, CVSM_DATABASE_URL="sqlite:///nowhere.db")
    assert (tmp_path / "dotenv-data" / "cvsm.db").is_file()  # empty --db: SQLite in data dir
    assert not (tmp_path / "nowhere.db").exists()


def test_version_is_the_package_metadata(tmp_path):
    out = cvsm("--version", cwd=tmp_path)
    assert out.stdout.strip() == f"cvsm {metadata.version('cvsm')}"


@pytest.mark.parametrize("command", [["index", "--catalog", "c"], ["merge"], ["migrate"],
                                     ["serve"]])
def test_shared_options_resolve_alike(command, tmp_path, monkeypatch):
    """Unset flags fall back to CVSM_* (never to a command's own default); given ones win."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CVSM_DATA_DIR", "from-env")
    monkeypatch.setenv("CVSM_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("CVSM_VOCAL_GATE", "true")
    gate = [] if command == ["migrate"] else ["--no-vocal-gate"]
    s = settings_from(build_parser().parse_args(command))
    assert (s.data_dir, s.database_url, s.vocal_gate) == (Path("from-env"), "sqlite:///env.db",
                                                          True)
    s = settings_from(build_parser().parse_args(
        [*command, "--data-dir", "flag", "--db", "sqlite:///flag.db", *gate]))
    assert (s.data_dir, s.db_url, s.vocal_gate) == (Path("flag"), "sqlite:///flag.db",
                                                    not gate)
    monkeypatch.delenv("CVSM_DATABASE_URL")
    s = settings_from(build_parser().parse_args(command))
    assert s.db_url == f"sqlite:///{(tmp_path / 'from-env' / 'cvsm.db').resolve()}"


def test_device_means_the_same_everywhere(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CVSM_DEVICE", raising=False)
    for command in (["index", "--catalog", "c"], ["serve"], ["train", "--config", "c",
                    "--data", "d", "--out", "o"], ["evaluate", "--data", "d", "--out", "o"]):
        assert settings_from(build_parser().parse_args(command)).device == "auto"
        monkeypatch.setenv("CVSM_DEVICE", "cpu")
        assert settings_from(build_parser().parse_args(command)).device == "cpu"
        args = build_parser().parse_args([*command, "--device", "cuda:1"])
        assert settings_from(args).device == "cuda:1"
        monkeypatch.delenv("CVSM_DEVICE")


def test_serve_refuses_an_index_of_another_model_without_a_traceback(tmp_path, catalog,
                                                                     init_checkpoint):
    """A data dir indexed by another model (e.g. the previous bundled default) stops
    `cvsm serve` with the reason and the fix, as a CLI error (exit 2), never a traceback."""
    env = {"CVSM_DATA_DIR": str(tmp_path / "data"), "CVSM_BACKEND": "torch",
           "CVSM_DEVICE": "cpu"}
    cvsm("index", "--catalog", str(catalog), "--workers", "1", "--no-progress",
         "--checkpoint", str(init_checkpoint), cwd=tmp_path, **env)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
    path = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    out = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "0"], cwd=tmp_path,
                         text=True, env={**base, "PYTHONPATH": path, **env},
                         capture_output=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "was built by model" in out.stderr and "re-run `cvsm index`" in out.stderr
    assert "Traceback" not in out.stderr
