"""The separation network through ONNX Runtime or OpenVINO, like the encoder's backbone.

The mask network (both stems' U-Nets in "ratio" mode) is traced once to an ONNX graph with a
free batch and frame count, cached under the cache folder by the stage's fingerprint, and run
by the same runners as the backbone (model/inference/backends.py, openvino_backend.py). Torch
stays the reference: `benchmarks/separation_speed.py` measures every runtime and its agreement
with torch, and an approximate one (bf16) is used only where its quality gate passed.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from model.files import atomic_target
from model.inference.backends import OPSET, default_cache_dir, ort_runner
from model.separation.separator import MaskRunner, Separator, VocalMask
from model.separation.unet import MULTIPLE

log = logging.getLogger("cvsm.model")
RUNTIMES = ("torch", "onnx", "openvino", "openvino-bf16")
NAMES = ("magnitude", "mask")


def graph_path(separator: Separator, cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir()) / f"separation-{separator.fingerprint}.onnx"


def export(net: VocalMask, path: Path, bins: int) -> None:
    """Trace `net` at (batch, 2, frames, bins) with batch and frames left free."""
    example = torch.zeros(1, 2, 2 * MULTIPLE, bins)
    with atomic_target(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(net.cpu().eval(), (example,), str(tmp), input_names=[NAMES[0]],
                          output_names=[NAMES[1]], opset_version=OPSET, dynamo=False,
                          dynamic_axes={NAMES[0]: {0: "batch", 2: "frames"},
                                        NAMES[1]: {0: "batch", 2: "frames"}})


def build(separator: Separator, runtime: str, threads: int | None = None,
          cache_dir: Path | None = None) -> MaskRunner | None:
    """The runner of `runtime` for this separator's network (None for torch)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"separation runtime must be one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return None
    if separator.device.type != "cpu":
        raise ValueError(f"runtime {runtime!r} runs on the CPU only")
    path = graph_path(separator, cache_dir)
    if not path.is_file():
        log.info("exporting the separation network to %s", path)
        export(separator.net, path, separator.framing.bins)
    if runtime.startswith("openvino"):
        from model.inference.openvino_backend import ov_runner

        return ov_runner(path, threads, bf16=runtime == "openvino-bf16")
    return ort_runner(path, threads, NAMES)


def with_runtime(separator: Separator, runtime: str, threads: int | None = None,
                 cache_dir: Path | None = None) -> Separator:
    """`separator` switched to `runtime` (in place; returns it for chaining)."""
    separator.runner = build(separator, runtime, threads, cache_dir)
    separator.backend = runtime
    return separator


def load_separator(device: str = "auto", runtime: str = "auto", threads: int | None = None,
                   cache_dir: Path | None = None, mode: str = "vocal-net") -> Separator:
    """The separation stage as served: torch on an accelerator; on the CPU `auto` is ONNX
    Runtime fp32, the fastest exact runtime measured (docs/benchmarks.md, Separation)."""
    separator = Separator.load(mode, device)
    if runtime == "auto":
        runtime = "torch" if separator.device.type != "cpu" else "onnx"
    return with_runtime(separator, runtime, threads, cache_dir)
