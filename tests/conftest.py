"""Shared fixtures: a small synthetic corpus and a real (untrained) model export, made once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import checkpoint
from model.data.synth import generate
from model.encoder import CVSMModel

#: The service tests' fixtures (model, seeded catalog folder) live in their own module.
pytest_plugins = ["service_fixtures"]

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
def mir1k_manifest() -> Path:
    if not MIR1K.is_file():
        pytest.skip("../shared/data/mir1k-dev is not present")
    return MIR1K


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reads MIR-1K dev `mir1k`, so `-m "not mir1k"` leaves them out."""
    for item in items:
        if "mir1k_manifest" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mir1k)
