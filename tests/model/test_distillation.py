"""Distillation, isolated voices, several manifests and fine-tuning (issue 17), on synthetic
singers: the KD loss falls, vocals-only rows train, the teacher cache is rebuilt exactly when
data or teacher change, resume stays exact, --init copies weights."""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import checkpoint
from model.data.manifest import ManifestError, read_manifests
from model.training.config import TrainConfig, load_config
from model.training.loop import Trainer
from model.training.pairs import PairConfig

pytest.importorskip("resemblyzer", reason="the train extra (resemblyzer) is not installed")
from model.training.teacher import HOP, WINDOW, ResemblyzerTeacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def kd_config(**kw) -> TrainConfig:
    base = dict(name="kd", pairs=PairConfig(system="cvsm_ah"), batch_size=8, steps=4,
                eval_interval=2, eval_batches=1, log_interval=1, val_fraction=0.2,
                kd_weight=1.0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def teacher() -> ResemblyzerTeacher:
    return ResemblyzerTeacher()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kdcache")


@pytest.fixture(scope="module")
def voices(synth_manifest: Path, tmp_path_factory) -> Path:
    """Isolated voices: two new singers' vocal stems only (no accompaniment, no mixture)."""
    out = tmp_path_factory.mktemp("voices") / "voices.csv"
    audio = synth_manifest.parent / "audio"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["clip_id", "singer", "song_id", "vocals"])
        for song in range(3):  # singer00's vocals, relabelled: a voice without a band
            w.writerow([f"solo_{song}", "solo", f"solo_s{song}",
                        audio / f"singer00_song0{song}_vocals.wav"])
    return out


def test_configs_exist_and_differ_only_in_the_contrastive_weight() -> None:
    kd = load_config(ROOT / "configs/cvsm_kd.toml")
    only = load_config(ROOT / "configs/kd_only.toml")
    assert kd.distils and only.distils and kd.system == only.system == "cvsm_ah"
    assert (kd.contrastive_weight, only.contrastive_weight) == (1.0, 0.0)
    assert dataclasses.replace(only, name="x", contrastive_weight=1.0) == dataclasses.replace(
        kd, name="x")
    with pytest.raises(ValueError, match="not both 0"):
        TrainConfig.from_dict({"kd_weight": 0.0, "contrastive_weight": 0.0})


def test_kd_loss_falls(synth_manifest, cache, teacher, tmp_path) -> None:
    trainer = Trainer(kd_config(contrastive_weight=0.0, lr=3e-4), synth_manifest, tmp_path,
                      device="cpu", cache_dir=cache, quiet=True, teacher=teacher)
    batch = trainer.train_sampler.sample(np.random.default_rng(5))
    targets, has = trainer._teacher(batch)
    assert has.float().mean() > 0.5  # most crops of singing have a teacher target
    np.testing.assert_allclose(targets[has].norm(dim=1).numpy(), 1.0, atol=1e-4)
    losses = []
    for _ in range(12):
        out = trainer.model(batch.anchors, batch.positives, batch.silent, targets, has)
        trainer.optimizer.zero_grad()
        out["loss"].backward()
        trainer.optimizer.step()
        losses.append(out["kd"].item())
        assert out["loss"].item() == pytest.approx(out["kd"].item())  # contrastive weight 0
    assert min(losses[-4:]) < 0.7 * losses[0], losses


def test_targets_follow_the_teacher_of_the_crop_track(synth_manifest, cache, teacher) -> None:
    trainer = Trainer(kd_config(), synth_manifest, cache / "unused", device="cpu",
                      cache_dir=cache, quiet=True, teacher=teacher)
    bank, targets = trainer.bank, trainer.targets
    t = 1
    centre = -(-(int(bank.starts[t]) + WINDOW // 2) // HOP) * HOP  # a grid point in the track
    start = centre - 8_000  # a 1 s crop centred on it
    window = np.asarray(bank.stems["vocals"][centre - WINDOW // 2:centre + WINDOW // 2],
                        dtype=np.float32)
    direct = teacher.embed(window[None])[0]  # the one grid window centred on the crop
    got, has = targets.lookup(np.array([start]), np.array([t]), context_s=0.2)
    assert has[0] and float(got[0] @ direct) > 0.999
    _, has = targets.lookup(np.array([start]), np.array([t + 1]), context_s=3.0)
    assert not has[0]  # windows of another track never count


def test_whole_track_context_targets_the_track_mean(synth_manifest, cache, teacher) -> None:
    """kd_context_s longer than any clip (configs/kd_track.toml): every crop of a track gets
    the same target, the normalised mean of all the track's sung teacher windows."""
    assert load_config(ROOT / "configs/kd_track.toml").kd_context_s >= 30.0
    trainer = Trainer(kd_config(), synth_manifest, cache / "unused", device="cpu",
                      cache_dir=cache, quiet=True, teacher=teacher)
    bank, targets = trainer.bank, trainer.targets
    t = 2
    first = int(bank.starts[t])
    at = np.array([first, first + int(bank.lengths[t]) - 16_000])  # its first and last second
    got, has = targets.lookup(at, np.array([t, t]), context_s=60.0)
    mine = (targets.track == t) & targets.valid
    mean = targets.embeddings[mine].astype(np.float32).mean(axis=0)
    assert has.all() and mine.sum() > 4
    np.testing.assert_allclose(got, np.stack([mean, mean]) / np.linalg.norm(mean), atol=1e-5)
    near, _ = targets.lookup(at, np.array([t, t]), context_s=3.0)
    assert float(near[0] @ near[1]) < float(got[0] @ got[1])  # 3 s targets differ along a track


def test_teacher_cache_rebuilt_only_when_data_or_teacher_change(synth_manifest, voices,
                                                                teacher, tmp_path) -> None:
    def build(manifests, t) -> Path:
        trainer = Trainer(kd_config(), manifests, tmp_path / "run", device="cpu",
                          cache_dir=tmp_path / "cache", quiet=True, teacher=t)
        return trainer.targets.folder

    first = build(synth_manifest, teacher)
    stamp = (first / "embeddings.npy").stat().st_mtime_ns
    assert build(synth_manifest, teacher) == first  # same data, same teacher: reused
    assert (first / "embeddings.npy").stat().st_mtime_ns == stamp
    other = ResemblyzerTeacher()
    other.version += "-retrained"
    assert build(synth_manifest, other) != first  # another teacher: new targets
    more = build([synth_manifest, voices], teacher)  # other data: new bank, new targets
    assert more.parent != first.parent


def test_vocals_only_rows_train_over_other_rows_accompaniment(synth_manifest, voices, cache,
                                                              teacher, tmp_path) -> None:
    tracks = read_manifests([synth_manifest, voices])
    assert sum(t.vocals_only for t in tracks) == 3
    trainer = Trainer(kd_config(val_artists=["singer03"]), [synth_manifest, voices], tmp_path,
                      device="cpu", cache_dir=cache, quiet=True, teacher=teacher)
    sampler = trainer.train_sampler
    solo = np.flatnonzero(trainer.bank.vocals_only)
    assert set(solo) <= set(sampler.tracks) and not set(solo) & set(sampler.donors)
    drawn = 0
    for seed in range(6):
        batch = sampler.sample(np.random.default_rng(seed))
        alone = np.isin(batch.anchor_tracks, solo)
        drawn += int(alone.sum())
        for i in np.flatnonzero(alone):  # its anchor holds accompaniment: not the bare voice
            assert not torch.allclose(batch.anchors[i], batch.positives[i])
    assert drawn > 0
    before = trainer.model.backbone.features[0][0].weight.clone()
    trainer.run(2)
    assert not torch.equal(before, trainer.model.backbone.features[0][0].weight)
    with pytest.raises(ValueError, match="vocals alone"):  # a real-mixture system cannot
        Trainer(TrainConfig(pairs=PairConfig(system="cola"), batch_size=4), voices,
                tmp_path / "cola", device="cpu", cache_dir=cache, quiet=True)


def test_manifests_may_not_share_track_ids(synth_manifest) -> None:
    with pytest.raises(ManifestError, match="also in"):
        read_manifests([synth_manifest, synth_manifest])


def test_resume_is_exact_with_kd(synth_manifest, cache, teacher, tmp_path) -> None:
    cfg = kd_config()
    full = Trainer(cfg, synth_manifest, tmp_path / "full", device="cpu", cache_dir=cache,
                   quiet=True, teacher=teacher)
    full.run(4)
    half = Trainer(cfg, synth_manifest, tmp_path / "half", device="cpu", cache_dir=cache,
                   quiet=True, teacher=teacher)
    half.run(2)
    resumed = Trainer(cfg, synth_manifest, tmp_path / "half", device="cpu", cache_dir=cache,
                      resume=True, quiet=True, teacher=teacher)
    assert resumed.step == 2
    resumed.run(4)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert "kd_head.weight" in a and a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "full" / "curves.png").stat().st_size > 0
    other = ResemblyzerTeacher()
    other.version += "-retrained"
    with pytest.raises(ValueError, match="another teacher"):
        Trainer(cfg, synth_manifest, tmp_path / "half", device="cpu", cache_dir=cache,
                resume=True, quiet=True, teacher=other)


def test_init_fine_tunes_from_an_export(synth_manifest, cache, teacher, init_checkpoint,
                                        tmp_path) -> None:
    cfg = kd_config(init=str(init_checkpoint), seed=3)
    trainer = Trainer(cfg, synth_manifest, tmp_path, device="cpu", cache_dir=cache,
                      quiet=True, teacher=teacher)
    source = checkpoint.load(init_checkpoint)["model"]
    own = trainer.model.state_dict()
    for key, value in source.items():
        assert torch.equal(own[key], value.float()), key
    trainer.run(2)
    assert checkpoint.load(tmp_path / "last.pt")["config"]["init"] == str(init_checkpoint)


def test_cli_takes_several_manifests_and_init(synth_manifest, voices, cache, init_checkpoint,
                                              tmp_path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "app.cli", "train", "--config",
           str(ROOT / "configs/cvsm_kd.toml"),
           "--data", str(synth_manifest), "--data", str(voices), "--init", str(init_checkpoint),
           "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "4",
           "--eval-interval", "2", "--cache-dir", str(cache), "--seed", "7", "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    state = checkpoint.load(tmp_path / "run" / "last.pt")
    assert state["teacher_version"].startswith("resemblyzer-") and state["step"] == 2
    assert state["config"]["seed"] == 7  # --seed overrides the config's
    assert "solo" in state["train_artists"] or "solo" in state["val_artists"]
    missing = subprocess.run(cmd[:-2] + ["--init", str(tmp_path / "nope.pt")] + cmd[-2:],
                             capture_output=True, text=True, env=env, cwd=ROOT)
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr


def test_served_embedding_is_recorded_and_loaded(synth_manifest, voices, cache, teacher,
                                                 init_checkpoint, tmp_path) -> None:
    from model.evaluation.systems import checkpoint_system
    from model.inference.embedder import Embedder

    trainer = Trainer(kd_config(embedding="kd", steps=2), synth_manifest, tmp_path,
                      device="cpu", cache_dir=cache, quiet=True, teacher=teacher)
    trainer.run()
    export = checkpoint.load(tmp_path / "model.pt")
    assert export["embedding"] == "kd" and "kd_head.weight" in export["model"]
    served = Embedder.from_checkpoint(tmp_path / "model.pt", device="cpu")
    plain = Embedder.from_checkpoint(tmp_path / "model.pt", device="cpu", embedding="backbone")
    assert (served.dim, plain.dim) == (256, 1280) and served.fingerprint != plain.fingerprint
    assert served.fingerprint == export["fingerprint"]
    # the training checkpoint names the same model as its export
    best = Embedder.from_checkpoint(tmp_path / "best.pt", device="cpu")
    assert best.embedding == "kd" and best.fingerprint == served.fingerprint
    wave = np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 0.1
    vec = served.embed_waveform(wave)
    assert vec.shape == (256,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5
    chunks = served.embed_chunks(np.zeros((2, 16_000), np.float32) + 0.01)
    assert chunks.shape == (2, 256)
    assert checkpoint_system(tmp_path / "best.pt", "cpu").name == "best-kd"
    out = subprocess.run(  # both embeddings scored side by side; a plain export has no head
        [sys.executable, "-m", "app.cli", "evaluate", "--retrieval-only", "--checkpoint",
         str(tmp_path / "best.pt"), str(init_checkpoint),
         "--embedding", "backbone", "kd", "--data", str(voices), "--out",
         str(tmp_path / "eval"), "--device", "cpu"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "skipped" in out.stderr and "no kd head" in out.stderr
    assert {p.name for p in (tmp_path / "eval").iterdir() if p.is_dir()} == {
        "best", "best-kd", "init"}
    with pytest.raises(ValueError, match="no kd head"):
        Embedder.from_checkpoint(init_checkpoint, "cpu", embedding="kd")


def test_a_split_of_isolated_voices_borrows_accompaniment(synth_manifest, voices, cache,
                                                          teacher, tmp_path) -> None:
    """Validation on isolated voices only (e.g. the RAVDESS actors held out) still mixes:
    its accompaniment comes from the other rows, which carry no singer of the split."""
    trainer = Trainer(kd_config(val_artists=["solo"]), [synth_manifest, voices], tmp_path,
                      device="cpu", cache_dir=cache, quiet=True, teacher=teacher)
    val = trainer.val_sampler
    assert {trainer.bank.tracks[i].artist for i in val.tracks} == {"solo"}
    assert len(val.donors) and not trainer.bank.vocals_only[val.donors].any()
    assert "val_acc" in trainer.validate()
