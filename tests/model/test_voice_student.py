"""The voice-LSTM student (configs/voice_kd.toml): the teacher's own network as a CVSM backbone,
started from its pretrained weights. It must start exactly where the teacher is, learn toward the
teacher's view of clean vocals from mixtures, serve through every exact runtime and refuse the
part built for the EfficientNet front end (int8 calibration); the vocal gate, trained on that
front end's log-mel, still works because it gets that log-mel computed for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.audio.features import LogMel
from model.audio.signal import central, chunk, l2_normalise
from model.audio.voice_mel import CHUNK_GAIN, voice_mel_spectrogram
from model.encoder import CVSMModel
from model.inference.gate import VocalGate, chunk_features
from model.training.config import TrainConfig, load_config
from model.training.loop import Trainer
from model.training.pairs import PairConfig

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("resemblyzer", reason="the train extra (resemblyzer) is not installed")
from resemblyzer import VoiceEncoder  # noqa: E402

from model.training.teacher import ResemblyzerTeacher, pretrained_backbone_state  # noqa: E402


def voice_config(**kw) -> TrainConfig:
    base = dict(name="voice", arch="voice-lstm", init="teacher", pairs=PairConfig(system="cvsm_ah"),
                batch_size=8, steps=4, eval_interval=2, eval_batches=1, log_interval=1,
                val_fraction=0.2, contrastive_weight=0.0, kd_weight=1.0, kd_context_s=1.0,
                lr=3e-4)
    base.update(kw)
    return TrainConfig(**base)


def served_with_own_fingerprint(trainer: Trainer, synth_manifest: Path):
    """Run `trainer`, load its export, check that the fingerprint names more than the weights
    (a context or frame pool changes every vector), and return it with two test mixtures."""
    from model import checkpoint as ckpt_io
    from model.audio.decode import load
    from model.inference.embedder import Embedder
    trainer.run()
    trainer.close()
    export = trainer.out / "model.pt"
    ref = Embedder.from_checkpoint(export, device="cpu")
    data = ckpt_io.load(export)
    state = ckpt_io.backbone_state(data["model"])
    assert ref.fingerprint == data["fingerprint"] != ckpt_io.fingerprint(state)
    waves = [load(p) for p in sorted((synth_manifest.parent / "audio").glob("*_mix.wav"))[:2]]
    return ref, waves


def test_the_teacher_init_is_the_teacher() -> None:
    """Same weights, same front end, same level: a chunk embeds exactly as the package's
    VoiceEncoder embeds it, and the distillation head starts as the identity."""
    model = CVSMModel(arch="voice-lstm", kd_dim=256, kd_weight=1.0).eval()
    missing = model.load_state_dict(pretrained_backbone_state(), strict=False).missing_keys
    assert not [k for k in missing if k.startswith("backbone.")]
    rng = np.random.default_rng(0)
    chunks = torch.from_numpy(chunk(0.1 * rng.standard_normal(48_000).astype(np.float32)))
    package = VoiceEncoder(device="cpu", verbose=False).eval()
    with torch.no_grad():
        ours = model.embed(chunks)
        theirs = package(voice_mel_spectrogram()(chunks * CHUNK_GAIN).transpose(1, 2))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
        np.testing.assert_allclose(model.kd_head(ours).numpy(), ours.numpy(), atol=1e-6)
    assert ours.shape == (3, 256) and model.backbone.input_shape == (101, 40)


def test_config_checks_arch_and_teacher_init() -> None:
    shipped = load_config(ROOT / "configs/voice_kd.toml")
    assert (shipped.arch, shipped.init, shipped.contrastive_weight) == ("voice-lstm", "teacher",
                                                                        0.0)
    assert (shipped.context_s, shipped.crop) == (0.5, 32_000)
    long = load_config(ROOT / "configs/voice_kd_long.toml")  # the default's recipe, stop 31
    assert (long.steps, long.lr_decay_steps) == (3000, 3000)
    assert {**vars(long), "name": "", "steps": 0, "lr_decay_steps": 0} == \
        {**vars(shipped), "name": "", "steps": 0, "lr_decay_steps": 0}
    with pytest.raises(ValueError, match="context_s"):
        TrainConfig.from_dict({"context_s": 2.5})
    with pytest.raises(ValueError, match="unknown arch"):
        TrainConfig.from_dict({"arch": "resnet"})
    with pytest.raises(ValueError, match="needs arch = 'voice-lstm'"):
        TrainConfig.from_dict({"init": "teacher"})


def test_mixtures_learn_toward_the_clean_voice(synth_manifest, tmp_path) -> None:
    """From the teacher's weights the clean-vocal crops already sit near their targets; the
    mixtures start farther away and their distillation loss falls with training."""
    teacher = ResemblyzerTeacher()
    trainer = Trainer(voice_config(), synth_manifest, tmp_path, device="cpu",
                      cache_dir=tmp_path / "cache", quiet=True, teacher=teacher)
    batch = trainer.train_sampler.sample(np.random.default_rng(3))
    targets, has = trainer._teacher(batch)
    half = len(batch.anchors)
    mix_has, voc_has = has[:half], has[half:]

    def losses() -> tuple[float, float]:
        with torch.no_grad():
            h = trainer.model.embed(torch.cat([batch.anchors, batch.positives]))
            cos = torch.nn.functional.cosine_similarity(trainer.model.kd_head(h), targets)
        return float((1 - cos[:half])[mix_has].mean()), float((1 - cos[half:])[voc_has].mean())

    mix0, voc0 = losses()
    assert voc0 < mix0  # the teacher's network hears clean vocals as the teacher does
    for _ in range(10):
        out = trainer.model(batch.anchors, batch.positives, batch.silent, targets, has)
        trainer.optimizer.zero_grad()
        out["loss"].backward()
        trainer.optimizer.step()
    mix1, _ = losses()
    assert mix1 < 0.8 * mix0, (mix0, mix1)


def test_teacher_init_refuses_the_efficientnet(synth_manifest, tmp_path) -> None:
    cfg = voice_config(arch="efficientnet-b0")
    with pytest.raises(ValueError, match="needs arch = 'voice-lstm'"):
        Trainer(cfg, synth_manifest, tmp_path, device="cpu", cache_dir=tmp_path / "cache",
                quiet=True, teacher=ResemblyzerTeacher())


def test_export_serves_through_every_exact_runtime(synth_manifest, tmp_path) -> None:
    """A trained voice-lstm export embeds through ONNX Runtime as through torch; int8 (its
    calibration is the EfficientNet's log-mel) is refused with a reason; the vocal gate
    skips silence as it does for the EfficientNet."""
    from model.audio.decode import load
    from model.inference.embedder import Embedder
    out = tmp_path / "run"
    trainer = Trainer(voice_config(steps=2), synth_manifest, out, device="cpu",
                      cache_dir=tmp_path / "cache", quiet=True, teacher=ResemblyzerTeacher())
    trainer.run()
    trainer.close()
    export = out / "model.pt"
    waves = [load(p) for p in sorted((synth_manifest.parent / "audio").glob("*_mix.wav"))[:3]]
    ref = Embedder.from_checkpoint(export, device="cpu")
    assert (ref.dim, ref.model.arch) == (256, "voice-lstm")
    vectors = ref.embed_many(waves)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    fast = Embedder.from_checkpoint(export, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert fast.fingerprint == ref.fingerprint
    assert float((fast.embed_many(waves) * vectors).sum(axis=1).min()) > 0.9999
    with pytest.raises(ValueError, match="onnx-int8"):
        Embedder.from_checkpoint(export, device="cpu", backend="onnx-int8", cache_dir=tmp_path)
    # A gate that passes loud chunks, on the EfficientNet log-mel's 128 statistics: 2 quiet
    # seconds then 3 loud ones (one 5 s block, so their 40 dB difference survives levelling).
    rng = np.random.default_rng(1)
    track = rng.standard_normal(80_000).astype(np.float32)
    track[:32_000] *= 0.01
    with torch.inference_mode():
        level = chunk_features(LogMel()(torch.from_numpy(chunk(track))).numpy())[:, :64].mean(1)
    loud = VocalGate(np.r_[np.full(64, 1 / 64), np.zeros(64)].astype(np.float32),
                     bias=-float(level[1] + level[2]) / 2)
    masks: list[np.ndarray] = []
    ref.with_gate(loud).embed_many([track], masks_out=masks)
    assert masks[0].tolist() == [False, False, True, True, True]


def test_context_windows_keep_one_vector_per_second() -> None:
    """`chunk(wave, context)` gives each 1 s chunk its neighbours' samples on both sides (zeros
    past the track, the dropped short tail kept as context); the middle is the plain chunk."""
    wave = np.random.default_rng(2).standard_normal(3 * 16_000 + 5_000).astype(np.float32)
    plain, wide = chunk(wave), chunk(wave, 8_000)
    assert plain.shape == (3, 16_000) and wide.shape == (3, 32_000)
    np.testing.assert_array_equal(central(wide, 8_000), plain)
    np.testing.assert_array_equal(wide[1, :8_000], plain[0, 8_000:])
    np.testing.assert_array_equal(wide[0, :8_000], 0)
    assert np.abs(wide[2, 24_000:29_000]).min() > 0 and not wide[2, 29_000:].any()


def test_a_context_model_trains_serves_and_names_its_context(synth_manifest, tmp_path) -> None:
    """context_s = 0.5: 2 s training crops, 2 s windows per chunk at inference (torch and ONNX
    alike), a fingerprint of its own, and the gate still judges the 1 s chunk itself."""
    from model.inference.embedder import Embedder
    out = tmp_path / "run"
    trainer = Trainer(voice_config(steps=2, context_s=0.5, kd_context_s=2.0), synth_manifest, out,
                      device="cpu", cache_dir=tmp_path / "cache", quiet=True,
                      teacher=ResemblyzerTeacher())
    batch = trainer.train_sampler.sample(np.random.default_rng(0))
    assert batch.anchors.shape[1] == batch.positives.shape[1] == 32_000
    ref, waves = served_with_own_fingerprint(trainer, synth_manifest)
    assert (ref.model.context, ref.model.input_shape) == (8_000, (201, 40))
    vectors = ref.embed_many(waves, voiced=[np.ones(20, bool)] * 2)
    with torch.inference_mode():
        by_hand = ref.model.embed(torch.from_numpy(chunk(waves[0], 8_000))).numpy()
    np.testing.assert_allclose(vectors[0], l2_normalise(by_hand.mean(0)), atol=1e-5)
    fast = Embedder.from_checkpoint(out / "model.pt", device="cpu", backend="onnx",
                                    cache_dir=tmp_path)
    assert float((fast.embed_many(waves) * ref.embed_many(waves)).sum(axis=1).min()) > 0.9999
    quiet = np.zeros(80_000, np.float32)
    quiet[32_000:] = np.random.default_rng(1).standard_normal(48_000)
    masks: list[np.ndarray] = []
    ref.embed_many([quiet], masks_out=masks)  # second 2 hears loud context, yet is silent
    assert masks[0].tolist() == [False, False, True, True, True]


def test_pooled_frames_train_serve_and_name_their_pool(synth_manifest, tmp_path) -> None:
    """frame_pool = 2: the LSTM steps over the mean of each two 10 ms frames (half the steps),
    torch and ONNX agree, and the pool is part of the fingerprint, so an index built without
    it is refused."""
    from model.inference.embedder import Embedder
    from model.voice_encoder import pool_frames
    mel = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    pooled = pool_frames(mel, 2)
    assert pooled.shape == (2, 2, 3)  # the odd last frame is dropped
    torch.testing.assert_close(pooled[1, 1], (mel[1, 2] + mel[1, 3]) / 2)
    assert pool_frames(mel, 1) is mel
    with pytest.raises(ValueError, match="frame_pool"):
        CVSMModel(frame_pool=2)  # the EfficientNet has no frames to pool
    with pytest.raises(ValueError, match="frame_pool"):
        TrainConfig.from_dict({**voice_config().to_dict(), "arch": "efficientnet-b0",
                               "init": "", "frame_pool": 2})
    trainer = Trainer(voice_config(steps=2, frame_pool=2), synth_manifest, tmp_path / "run",
                      device="cpu", cache_dir=tmp_path / "cache", quiet=True,
                      teacher=ResemblyzerTeacher())
    ref, waves = served_with_own_fingerprint(trainer, synth_manifest)
    assert ref.model.frame_pool == ref.model.backbone.frame_pool == 2
    vectors = ref.embed_many(waves, voiced=[np.ones(20, bool)] * 2)
    with torch.inference_mode():
        feats = ref.model.frontend(torch.from_numpy(chunk(waves[0])))
        _, (hidden, _) = ref.model.backbone.lstm(pool_frames(feats, 2))
        raw = torch.relu(ref.model.backbone.linear(hidden[-1]))
    by_hand = (raw / raw.norm(dim=1, keepdim=True)).numpy()
    np.testing.assert_allclose(vectors[0], l2_normalise(by_hand.mean(0)), atol=1e-5)
    fast = Embedder.from_checkpoint(trainer.out / "model.pt", device="cpu", backend="onnx",
                                    cache_dir=tmp_path)
    assert float((fast.embed_many(waves) * ref.embed_many(waves)).sum(axis=1).min()) > 0.9999
