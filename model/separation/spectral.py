"""Spleeter's short-time Fourier framing, at any sample rate.

Spleeter was trained at 44.1 kHz on a 4096-point Hann window, hop 1024, and sees the lowest 1024
bins (0-11 kHz). Our encoder hears 16 kHz audio, so nothing above 8 kHz can matter to it. At
16 kHz the same window *in seconds* (1486 samples) and hop (372) give bins of the same width
(10.77 Hz) at the same frame rate (43 per second), so the U-Net sees the same picture up to
8 kHz, and only 768 bins (744 real, the rest zero) instead of 1024: the U-Net's cost falls by a
quarter and no 44.1 kHz decode or resampling is needed (docs/benchmarks.md, Separation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from model.separation.unet import MULTIPLE

#: Spleeter's own rate, window, hop and the bins its U-Net was trained on.
SPLEETER_RATE, SPLEETER_FFT, SPLEETER_HOP, SPLEETER_BINS = 44_100, 4096, 1024, 1024


@dataclass(frozen=True)
class Framing:
    """Spleeter's framing scaled to `rate` Hz (identical to Spleeter's at 44.1 kHz)."""

    rate: int

    @property
    def n_fft(self) -> int:
        return 2 * round(SPLEETER_FFT / 2 * self.rate / SPLEETER_RATE)

    @property
    def hop(self) -> int:
        return round(SPLEETER_HOP * self.rate / SPLEETER_RATE)

    @property
    def bins(self) -> int:
        """Bins the U-Net sees: Spleeter's 1024, or all bins of a lower rate rounded up to the
        U-Net's multiple of 64 (the extra ones are zero)."""
        real = self.n_fft // 2 + 1
        return min(SPLEETER_BINS, math.ceil(real / MULTIPLE) * MULTIPLE)

    def window(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.hann_window(self.n_fft, device=device)

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """(channels, samples) float -> (channels, n_fft // 2 + 1, frames) complex, centred
        with zero padding as Spleeter's front end does."""
        return torch.stft(wave, self.n_fft, self.hop, window=self.window(wave.device),
                          center=True, pad_mode="constant", return_complex=True)

    def magnitude(self, spec: torch.Tensor) -> torch.Tensor:
        """(channels, freq, frames) complex -> (channels, frames, bins) magnitude, the U-Net's
        orientation, zero-padded or cut to `bins`."""
        mag = spec.abs()[:, : self.bins].transpose(1, 2)
        extra = self.bins - mag.shape[2]
        return torch.nn.functional.pad(mag, (0, extra)) if extra > 0 else mag

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of `stft` (bins above `bins` come back as whatever `spec` holds there)."""
        return torch.istft(spec, self.n_fft, self.hop, window=self.window(spec.device),
                           center=True, length=length)
