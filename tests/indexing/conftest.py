"""Indexing test fixtures: a database of each kind, a tiny catalog, two embedders.

PostgreSQL (127.0.0.1:5432, trust auth, database `test`) gets a fresh schema per test, selected
through the connection's search_path, and dropped afterwards, so parallel runs never collide;
the PostgreSQL cases skip when the server is unreachable.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, text

from model import checkpoint
from model.data.synth import generate
from model.encoder import CVSMModel
from model.inference.embedder import Embedder

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_schema_url(schema: str) -> str:
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema():
    """A factory of fresh PostgreSQL schemas (URLs), all dropped at teardown."""
    try:
        admin = create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "skip"
        pytest.skip(f"PostgreSQL unreachable: {type(exc).__name__}")
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {name}"))
        made.append(name)
        return pg_schema_url(name)

    yield make
    with admin.begin() as conn:
        for name in made:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_factory(request, tmp_path: Path):
    """A factory of empty databases of the parametrised kind."""
    if request.param == "sqlite":
        counter = iter(range(1000))
        return lambda: f"sqlite:///{tmp_path / f'db{next(counter)}.sqlite'}"
    return request.getfixturevalue("pg_schema")


@pytest.fixture
def db_url(db_factory) -> str:
    return db_factory()


@pytest.fixture(scope="session")
def tiny_catalog_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 singers x 2 songs x 3 s (4 tracks)."""
    return generate(tmp_path_factory.mktemp("tiny"), singers=2, songs=2, seconds=3.0, seed=11)


@pytest.fixture
def tiny_catalog(tiny_catalog_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny catalog, so a test may change or corrupt its files."""
    folder = shutil.copytree(tiny_catalog_master.parent, tmp_path / "catalog")
    return Path(folder) / tiny_catalog_master.name


@pytest.fixture(scope="session")
def embedder(init_checkpoint: Path) -> Embedder:
    return Embedder.from_checkpoint(init_checkpoint, "cpu")


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, differently seeded model: another fingerprint."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt2") / "other.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, path)
    return path
