"""Speed-shifted copies of voices (model/data/voice_shift.py): what they sound like, and how
training holds them (their own rows, their source singer's side of a split, the teacher's
targets of the shifted audio)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import checkpoint
from model.audio.signal import SAMPLE_RATE
from model.data.manifest import read_manifests
from model.data.voice_shift import shifted_tracks, speed_shift
from model.training.config import TrainConfig
from model.training.loop import Trainer
from model.training.pairs import PairConfig

pytest.importorskip("resemblyzer")
from model.training.teacher import HOP, WINDOW, ResemblyzerTeacher  # noqa: E402


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spectrum.argmax()])


def test_speed_shift_moves_every_frequency_and_the_duration() -> None:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    for f in (0.88, 1.12):
        y = speed_shift(tone, f)
        assert len(y) == pytest.approx(len(tone) / f, abs=2)
        assert _peak_hz(y[2000:-2000]) == pytest.approx(440 * f, abs=2.0)
    with pytest.raises(ValueError, match="differ from 1"):
        shifted_tracks([], [1.0])
    with pytest.raises(ValueError, match="must lie"):
        shifted_tracks([], [2.0])


def test_shifted_copies_are_new_voices_on_their_source_side(synth_manifest) -> None:
    tracks = read_manifests([synth_manifest])
    copies = shifted_tracks(tracks, [0.94, 1.06])
    assert len(copies) == 2 * sum(t.vocals is not None for t in tracks)
    c = copies[0]
    assert c.vocals_only and c.vocal_activity is None and c.speed == 0.94
    assert c.artist == tracks[0].artist + "~x0.94" and c.held_out_as == tracks[0].artist
    assert len({c.track_id for c in copies} | {t.track_id for t in tracks}) == len(
        copies) + len(tracks)
    # a copy of a copy still follows the original singer
    assert shifted_tracks([c], [1.12])[0].held_out_as == tracks[0].artist


def test_training_with_shifts_holds_out_the_copies_and_distils_the_shifted_audio(
        synth_manifest, tmp_path) -> None:
    teacher = ResemblyzerTeacher()
    cfg = TrainConfig(name="kd", pairs=PairConfig(system="cvsm_ah"), batch_size=8,
                      eval_interval=2, eval_batches=1, log_interval=1, kd_weight=1.0,
                      contrastive_weight=0.0, val_artists=["singer03"], voice_shifts=[1.12])
    trainer = Trainer(cfg, synth_manifest, tmp_path / "run", device="cpu",
                      cache_dir=tmp_path / "cache", quiet=True, teacher=teacher)
    bank = trainer.bank
    shifted = np.array([t.speed != 1.0 for t in bank.tracks])
    held = np.array([t.held_out_as == "singer03" for t in bank.tracks])
    assert shifted.sum() == (~shifted).sum()
    val, train = set(trainer.val_idx), set(trainer.train_idx)
    assert val == set(np.flatnonzero(held & (bank.lengths >= SAMPLE_RATE)))
    assert not train & set(np.flatnonzero(held))  # no held-out voice trains in disguise
    assert set(np.flatnonzero(shifted & ~held)) <= train
    # the copy's stem is its source's vocals played 1.12x faster, and the teacher heard it
    src = next(i for i, t in enumerate(bank.tracks) if t.speed == 1.0 and t.vocals)
    cp = next(i for i, t in enumerate(bank.tracks) if t.track_id == bank.tracks[src].track_id
              + "~x1.12")
    assert bank.lengths[cp] == pytest.approx(bank.lengths[src] / 1.12, abs=2)
    source = np.asarray(bank.stems["vocals"][bank.starts[src]:bank.starts[src]
                                             + bank.lengths[src]], np.float32)
    copy = np.asarray(bank.stems["vocals"][bank.starts[cp]:bank.starts[cp] + bank.lengths[cp]],
                      np.float32)
    np.testing.assert_allclose(copy, speed_shift(source, 1.12), atol=2e-3)
    centre = -(-(int(bank.starts[cp]) + WINDOW // 2) // HOP) * HOP
    window = np.asarray(bank.stems["vocals"][centre - WINDOW // 2:centre + WINDOW // 2],
                        np.float32)
    got, has = trainer.targets.lookup(np.array([centre - 8_000]), np.array([cp]), 0.2)
    assert has[0] and float(got[0] @ teacher.embed(window[None])[0]) > 0.999
    before = trainer.model.backbone.features[0][0].weight.clone()
    trainer.run(2)
    assert not torch.equal(before, trainer.model.backbone.features[0][0].weight)
    saved = checkpoint.load(tmp_path / "run" / "last.pt")  # singers heard, by source
    assert saved["val_artists"] == ["singer03"] and "~x" not in "".join(saved["train_artists"])


def test_a_random_split_keeps_each_copy_with_its_source_track(synth_manifest, tmp_path) -> None:
    teacher = ResemblyzerTeacher()
    cfg = TrainConfig(name="kd", pairs=PairConfig(system="cvsm_ah"), batch_size=8,
                      kd_weight=1.0, val_fraction=0.3, voice_shifts=[0.94, 1.06])
    plain = Trainer(dataclasses.replace(cfg, voice_shifts=[]), synth_manifest, tmp_path / "a",
                    device="cpu", cache_dir=tmp_path / "cache", quiet=True, teacher=teacher)
    shifted = Trainer(cfg, synth_manifest, tmp_path / "b", device="cpu",
                      cache_dir=tmp_path / "cache", quiet=True, teacher=teacher)

    def val_ids(trainer: Trainer) -> set[str]:
        return {trainer.bank.tracks[i].split_key for i in trainer.val_idx}

    assert val_ids(shifted) == val_ids(plain)  # copies add no say in which tracks validate
    for idx, side in ((shifted.train_idx, set(shifted.train_idx)),
                      (shifted.val_idx, set(shifted.val_idx))):
        keys = {shifted.bank.tracks[i].split_key for i in idx}
        assert {i for i, t in enumerate(shifted.bank.tracks)
                if t.split_key in keys and shifted.bank.lengths[i] >= SAMPLE_RATE} == side


def test_shifts_need_a_system_that_mixes() -> None:
    with pytest.raises(ValueError, match="artificial mixtures"):
        TrainConfig.from_dict({"pairs": {"system": "cola"}, "voice_shifts": [0.9]})
    assert TrainConfig.from_dict({"voice_shifts": [0.9, 1.1]}).voice_shifts == [0.9, 1.1]


def test_cli_refuses_bad_shifts_before_any_work(synth_manifest, tmp_path) -> None:
    root = Path(__file__).resolve().parents[2]
    base = [sys.executable, "-m", "app.cli", "train", "--config",
            str(root / "configs/kd_shift.toml"), "--data", str(synth_manifest), "--out",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    for value, says in (("3", "must lie"), ("0.9,x", "takes numbers")):
        out = subprocess.run(base + ["--voice-shifts", value], capture_output=True, text=True,
                             cwd=root)
        assert out.returncode == 2 and says in out.stderr, out.stderr[-500:]
    assert not (tmp_path / "cache").exists()  # refused before decoding anything
