"""Fast inference for the backbone: ONNX Runtime on CPU, with torch kept as the reference.

Measured on the 2-core box (docs/design.md), ONNX Runtime runs EfficientNet-B0 about 3x faster than
eager torch for the same numbers (cosine 1.0), so CPU inference goes through it, or through
OpenVINO (model/inference/openvino_backend.py), which reads the same graph; `auto` picks among
them by measuring (model/inference/selection.py). The graph is
exported from the loaded weights on first use and cached as `<checkpoint>.<fingerprint>.onnx`
beside the checkpoint, or in a user cache folder when that folder is read-only. The file name
carries the model fingerprint (and the graph's own metadata repeats it), so a changed model
never reuses a stale graph. The log-mel front end stays in torch: it is exact there and a small
share of the time; only the (batch, 98, 64) log-mel crosses into ONNX Runtime.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.files import atomic_target

if TYPE_CHECKING:  # torch loads only when a model does: the CLIs import BACKENDS from here
    import torch

    from model.encoder import Backbone

log = logging.getLogger("cvsm.model")
BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")
#: Bump when the export recipe changes, so older cached graphs are not reused
#: (2: static int8 replaced dynamic int8).
EXPORT_VERSION = "2"
OPSET = 17
INPUT, OUTPUT = "logmel", "embedding"

Runner = Callable[[np.ndarray], np.ndarray]


def check_backend(backend: str, device: torch.device) -> None:
    """Refuse unknown backends and CPU-only runtimes on an accelerator."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend != "auto" and backend != "torch" and device.type != "cpu":
        raise ValueError(f"backend {backend!r} runs on the CPU only (device is {device})")


def torch_threads_for(backend: str, threads: int) -> int:
    """Torch's intra-op threads beside `backend`. With ONNX Runtime or OpenVINO (their own
    pools) torch runs only the log-mel front end, which took 14-23 ms on one thread and 20-115
    ms on two on the shared 2-core box (OpenMP threads spin-waiting beside the runtime's), and
    leaves the cores to the runtime."""
    return threads if backend in ("torch", "auto") else 1


def default_cache_dir() -> Path:
    """Where graphs go when the checkpoint's folder is read-only (the app may pass another)."""
    return Path.home() / ".cache" / "cvsm" / "onnx"


def graph_path(checkpoint: Path | None, fingerprint: str, int8: bool,
               cache_dir: Path | None = None) -> Path:
    """The cached graph's path: beside a writable checkpoint, else in `cache_dir`."""
    name = f"{fingerprint}.v{EXPORT_VERSION}{'.int8' if int8 else ''}.onnx"
    if checkpoint is not None and os.access(Path(checkpoint).parent, os.W_OK):
        return Path(checkpoint).parent / f"{Path(checkpoint).stem}.{name}"
    return (cache_dir or default_cache_dir()) / name


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, so readers never see half a graph."""
    with atomic_target(path) as tmp:
        write(tmp)


def export_backbone(backbone: Backbone, path: Path, fingerprint: str,
                    input_shape: tuple[int, int] | None = None) -> None:
    """Trace the eval-mode backbone to ONNX (dynamic batch), stamped with the fingerprint;
    `input_shape` (frames, mels) when the model hears more than 1 s per chunk."""
    import onnx
    import torch

    example = torch.zeros(2, *(input_shape or backbone.input_shape))

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter:
            # the dynamo one needs onnxscript, and this graph has no control flow to lose
            # The voice-lstm's LSTM: tracing sees shape checks, and the exporter warns about a
            # variable batch; with no initial state given, ONNX's LSTM starts from zeros at any
            # batch size (tests/model/test_voice_student.py compares it with torch).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
            torch.onnx.export(backbone.eval(), (example,), str(tmp), input_names=[INPUT],
                              output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
        graph = onnx.load(str(tmp))
        onnx.helper.set_model_props(graph, {"cvsm_fingerprint": fingerprint,
                                            "cvsm_export": EXPORT_VERSION})
        onnx.save(graph, str(tmp))

    _atomic(path, write)


def calibration_logmel(tracks: int = 8, seconds: float = 8.0) -> np.ndarray:
    """(n, 98, 64) log-mel of synthetic singing over accompaniment (model/data/synth.py), cut and
    level-normalised as the Embedder does: activation ranges for static quantisation, made in
    code so that no data set is needed where the graph is built."""
    import torch

    from model.audio.features import LogMel
    from model.audio.signal import chunk
    from model.data.synth import accompany, make_singer, make_song, sing

    waves = []
    for i in range(tracks):
        singer, song = make_singer(i, 1), make_song(i % 3, 1)
        vocals, _ = sing(singer, song, seconds, i)
        waves.append(chunk(np.clip(vocals + accompany(song, seconds, i), -1, 1)))
    with torch.inference_mode():
        return LogMel()(torch.from_numpy(np.concatenate(waves))).numpy()


def quantize_graph(fp32: Path, path: Path, float_nodes: Sequence[str] = ()) -> None:
    """Static int8 (QDQ, per-channel int8 weights, uint8 activations calibrated at the 99.999th
    percentile): ONNX Runtime fuses it into integer kernels (VNNI), ~1.2x the fp32 speed here;
    on 746 real tracks, median cosine to fp32 0.997 and top-10 overlap 0.93
    (docs/benchmarks.md). Dynamic quantisation, tried first, ran ConvInteger 9x slower.
    Nodes whose names contain any of `float_nodes` stay in float (benchmarks/int8_variants.py
    measured whether that rescues the quality gate: it does not)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = np.array_split(calibration_logmel(), 8)
    names = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node]
    excluded = [n for n in names if any(part in n for part in float_nodes)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    def quantize(prepared: Path, tmp: Path, method: CalibrationMethod) -> None:
        quantize_static(str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=method,
                        nodes_to_exclude=excluded)

    def write(tmp: Path) -> None:
        prepared = tmp.with_suffix(".pre.onnx")
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            try:
                quantize(prepared, tmp, CalibrationMethod.Percentile)
            except ValueError:  # a constant activation has no histogram (untrained networks)
                log.warning("percentile calibration failed; using min-max ranges")
                quantize(prepared, tmp, CalibrationMethod.MinMax)
        finally:
            prepared.unlink(missing_ok=True)

    _atomic(path, write)


def graph_fingerprint(path: Path) -> str | None:
    """The fingerprint stamped into a cached graph (None when unreadable)."""
    import onnx

    try:
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception:  # noqa: BLE001 - a damaged cache file is simply rebuilt
        return None
    meta = {p.key: p.value for p in props}
    return meta.get("cvsm_fingerprint") if meta.get("cvsm_export") == EXPORT_VERSION else None


def ensure_graph(backbone: Backbone, fingerprint: str, checkpoint: Path | None,
                 int8: bool = False, cache_dir: Path | None = None,
                 input_shape: tuple[int, int] | None = None) -> Path:
    """The cached graph for these weights, exported (and quantised) only when missing or stale
    (the fingerprint names the context too, so the traced `input_shape` cannot be stale)."""
    path = graph_path(checkpoint, fingerprint, int8, cache_dir)
    if path.is_file() and graph_fingerprint(path) == fingerprint:
        return path
    if int8:
        fp32 = ensure_graph(backbone, fingerprint, checkpoint, False, cache_dir, input_shape)
        log.info("quantising %s -> %s", fp32.name, path)
        quantize_graph(fp32, path)
        import onnx

        graph = onnx.load(str(path))
        onnx.helper.set_model_props(graph, {"cvsm_fingerprint": fingerprint,
                                            "cvsm_export": EXPORT_VERSION})
        _atomic(path, lambda tmp: onnx.save(graph, str(tmp)))
    else:
        log.info("exporting the backbone to %s", path)
        export_backbone(backbone, path, fingerprint, input_shape)
    return path


def build_runner(backend: str, backbone: Backbone, fingerprint: str, checkpoint: Path | None,
                 threads: int | None = None, cache_dir: Path | None = None,
                 input_shape: tuple[int, int] | None = None) -> Runner | None:
    """The runner of a CPU backend over this backbone (None for "torch": the module itself);
    the ONNX graph is exported (and quantised for int8) once and cached."""
    if backend == "torch":
        return None
    graph = ensure_graph(backbone, fingerprint, checkpoint, backend == "onnx-int8", cache_dir,
                         input_shape)
    if backend.startswith("openvino"):
        from model.inference.openvino_backend import ov_runner

        return ov_runner(graph, threads, bf16=backend == "openvino-bf16")
    return ort_runner(graph, threads)


def ort_runner(path: Path, threads: int | None = None, names: tuple[str, str] = (INPUT, OUTPUT)
               ) -> Runner:
    """A session over the graph: `threads` intra-op threads (torch's count by default), one
    inter-op thread and no spin-waiting, so concurrent requests share 2 cores instead of
    fighting over them. `names`: the graph's input and output (the backbone's by default)."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # torch.set_flush_denormal does not reach ONNX Runtime's threads: denormals cost 10x
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(logmel: np.ndarray) -> np.ndarray:
        return session.run([names[1]], {names[0]: np.ascontiguousarray(logmel, np.float32)})[0]

    return run
