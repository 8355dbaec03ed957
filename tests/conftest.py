"""Fixtures shared by every suite, defined once: a small synthetic corpus, a real (untrained)
model export and its embedder, MIR-1K when present, and databases of each kind.

PostgreSQL (127.0.0.1:5432, trust auth, database `test`) gets a fresh schema per test, selected
through the connection's search_path, and dropped afterwards, so parallel runs never collide;
the PostgreSQL cases skip when the server is unreachable.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, text

from model import checkpoint
from model.data.synth import generate
from model.encoder import CVSMModel
from model.inference.embedder import Embedder

#: The service tests' fixtures (model, seeded catalog folder) live in their own module.
pytest_plugins = ["tests.service_fixtures"]

#: The suite tests the plain path unless a test asks for separation (the product's default is
#: on: docs/design.md, Separation and singing detection); tests/app/test_separation_service.py
#: and tests/model/test_separation.py run it. Subprocesses that drop CVSM_* get it back here.
PLAIN = {"CVSM_SEPARATION": "off"}
os.environ.update(PLAIN)

MIR1K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mir1k-dev" / "clips.csv"


@pytest.fixture(scope="session")
def synth_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 singers x 3 songs x 6 s, generated in about a second."""
    return generate(tmp_path_factory.mktemp("synth"), singers=4, songs=3, seconds=6.0, seed=7)


@pytest.fixture(scope="session")
def init_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inference export of a freshly initialised network (seeded): real code, no training."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "init.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {"name": "init"}},
                                path)
    return path


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, differently seeded model: another fingerprint."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt2") / "other.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, path)
    return path


@pytest.fixture(scope="session")
def embedder(init_checkpoint: Path) -> Embedder:
    return Embedder.from_checkpoint(init_checkpoint, device="cpu")


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
def mir1k_manifest() -> Path:
    if not MIR1K.is_file():
        pytest.skip("../shared/data/mir1k-dev is not present")
    return MIR1K


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reads MIR-1K dev `mir1k`, so `-m "not mir1k"` leaves them out."""
    for item in items:
        if "mir1k_manifest" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mir1k)
