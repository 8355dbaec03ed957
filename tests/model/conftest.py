"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest
import torch

from model import checkpoint as ckpt_io
from model.data.manifest import read_manifest
from model.encoder import CVSMModel


@pytest.fixture
def lstm_checkpoint(synth_manifest, tmp_path):
    """A seeded voice-LSTM with a 0.5 s context, recorded as trained on 3 of the 4 singers."""
    torch.manual_seed(3)
    singers = sorted({t.artist for t in read_manifest(synth_manifest)})
    path = tmp_path / "lstm.pt"
    ckpt_io.export_inference({"model": CVSMModel(arch="voice-lstm").state_dict(),
                              "config": {"arch": "voice-lstm", "context_s": 0.5}}, path,
                             extra={"train_artists": singers[:3]})
    return path, singers
