import numpy as np
import torch

from model.audio.features import LogMel, n_frames


def reference_logmel(x: np.ndarray) -> np.ndarray:
    """Independent numpy computation of DESIGN.md's front end (float64)."""
    win, hop, nfft, sr = 400, 160, 1024, 16_000
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    count = 1 + (len(x) - win) // hop
    frames = np.stack([x[i * hop: i * hop + win] * window for i in range(count)])
    mag = np.abs(np.fft.rfft(frames, n=nfft))  # (frames, 513)

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(60.0), mel(7800.0), 64 + 2))
    freqs = np.linspace(0, sr / 2, nfft // 2 + 1)
    fb = np.zeros((nfft // 2 + 1, 64))
    for b in range(64):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[:, b] = np.maximum(0, np.minimum(up, down))
    return np.log(np.clip(mag @ fb, 1e-5, 1e8))


def test_shape_one_second() -> None:
    assert n_frames(16_000) == 98
    out = LogMel()(torch.randn(3, 16_000))
    assert out.shape == (3, 98, 64)


def test_matches_independent_numpy() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    x = 0.05 * np.sin(2 * np.pi * 330 * t) + 0.01 * rng.standard_normal(16_000)
    ours = LogMel()(torch.from_numpy(x).float()[None])[0].double().numpy()
    ref = reference_logmel(x)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_clip_floor_on_silence() -> None:
    out = LogMel()(torch.zeros(1, 16_000))
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-5))))


def test_batched_equals_single() -> None:
    x = torch.randn(4, 16_000) * 0.1
    m = LogMel()
    full = m(x)
    for i in range(4):
        torch.testing.assert_close(full[i], m(x[i: i + 1])[0])


def test_inference_blocks_equal_one_pass(monkeypatch) -> None:
    """The CPU inference path runs CPU_BLOCK clips at a time (cache-sized); a batch that is not
    a multiple of it gives the same numbers as one pass and as the training path."""
    from model.audio import features

    x = torch.randn(12, 16_000) * 0.1
    m = LogMel()
    with torch.inference_mode():
        blocked = m(x)
        monkeypatch.setattr(features, "CPU_BLOCK", 100)
        one_pass = m(x)
    torch.testing.assert_close(blocked, one_pass, rtol=0, atol=0)
    assert blocked.shape == (12, 98, 64)
    with torch.no_grad():
        torch.testing.assert_close(blocked, m.mel(x).clamp(1e-5, 1e8).log().transpose(1, 2))
