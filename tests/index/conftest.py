"""Indexing test fixtures: a tiny catalog (the databases, the models and the synthetic corpus
come from tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model.data.synth import generate


@pytest.fixture(scope="session")
def tiny_catalog_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 singers x 2 songs x 3 s (4 tracks)."""
    return generate(tmp_path_factory.mktemp("tiny"), singers=2, songs=2, seconds=3.0, seed=11)


@pytest.fixture
def tiny_catalog(tiny_catalog_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny catalog, so a test may change or corrupt its files."""
    folder = shutil.copytree(tiny_catalog_master.parent, tmp_path / "catalog")
    return Path(folder) / tiny_catalog_master.name
