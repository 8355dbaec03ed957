"""The COLA log-mel front end (docs/design.md), as a batched torch module on any device.

25 ms Hann window (400), 10 ms hop (160), FFT 1024, no centring, magnitude, 64 HTK mel bands
60-7800 Hz, clipped to [1e-5, 1e8], natural log: one second (16,000 samples) gives 98 x 64.

torchaudio centres a short window inside the FFT frame, so frame k would start 312 samples late;
padding 312 zeros on both sides makes frame k cover exactly samples [160 k, 160 k + 400), the
framing of tf.signal.stft that the paper used (98 frames per second, not 94).
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from model.audio.signal import SAMPLE_RATE

WIN_LENGTH = 400
HOP_LENGTH = 160
N_FFT = 1024
N_MELS = 64
F_MIN = 60.0
F_MAX = 7800.0
CLIP_MIN = 1e-5
CLIP_MAX = 1e8
_PAD = (N_FFT - WIN_LENGTH) // 2
#: Clips per pass of the CPU inference path. One STFT of 30 one-second clips (12 MB of complex
#: bins) spills the 1-2 MB per-core L2 cache, and the magnitude's passes over it then run from
#: memory; five at a time keep each pass near the cache: 7.9-8.9 ms against 9.9-24 ms for 30
#: clips on one Zen 4 thread, the same numbers bit for bit (docs/benchmarks.md, "Issue 14,
#: third pass").
CPU_BLOCK = 5


def n_frames(n_samples: int) -> int:
    """Frames the front end yields for `n_samples` (98 for one second)."""
    return 1 + (n_samples - WIN_LENGTH) // HOP_LENGTH


class LogMel(nn.Module):
    """(batch, samples) float waveform -> (batch, frames, 64) log-mel, differentiable."""

    frames = staticmethod(n_frames)

    def __init__(self) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=WIN_LENGTH,
            hop_length=HOP_LENGTH,
            f_min=F_MIN,
            f_max=F_MAX,
            n_mels=N_MELS,
            pad=_PAD,
            power=1.0,
            center=False,
            norm=None,
            mel_scale="htk",
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # The STFT runs in float32 even under autocast: bf16 magnitudes lose the quiet bands.
        with torch.autocast(device_type=wave.device.type, enabled=False):
            if torch.is_grad_enabled():
                spec = self.mel(wave.float())  # (batch, mels, frames)
            elif wave.device.type == "cpu" and len(wave) > CPU_BLOCK:
                return torch.cat([self(block) for block in wave.split(CPU_BLOCK)])
            else:
                spec = self.mel.mel_scale(self._magnitude(wave.float()))
        return torch.log(spec.clamp(CLIP_MIN, CLIP_MAX)).transpose(1, 2)

    def _magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """|STFT| for inference: sqrt(re^2 + im^2) is 2x faster than complex abs() on CPU
        (hypot), the same to 4e-6; not for training, where sqrt's gradient at 0 is infinite."""
        stft = self.mel.spectrogram
        spec = torchaudio.functional.spectrogram(
            wave, stft.pad, stft.window, stft.n_fft, stft.hop_length, stft.win_length, None,
            stft.normalized, stft.center, stft.pad_mode, stft.onesided)
        return (spec.real.square() + spec.imag.square()).sqrt_()
