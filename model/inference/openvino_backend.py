"""The backbone through OpenVINO (PyPI `openvino`): fp32, or bf16 where the CPU has bf16 units.

Why a second CPU runtime: ONNX Runtime's CPU kernels have no bf16 path on x86, and torch's bf16
convolutions (oneDNN) were slower than ONNX Runtime fp32 on the 2-core AMD EPYC (Zen 4, with
AVX512-BF16) where this was measured, while OpenVINO's bf16 ran the 30-chunk batch of a 30 s
query in 13.6 ms against 15.6 ms for ONNX Runtime fp32 and 17.0 ms for its own fp32, with
per-chunk cosine >= 0.99993 to fp32 on real music (docs/benchmarks.md). OpenVINO reads the same
cached ONNX graph (model/inference/backends.py), so there is nothing more to export. On a CPU
without bf16 instructions OpenVINO quietly runs fp32; the start-up probe
(model/inference/selection.py) then simply finds no gain.

Models are compiled on a helper thread: OpenVINO's CPU plugin gives the thread that compiles an
11.5 KB alternate signal stack, and on the main thread CPython's own SIGTERM/SIGINT handlers
then ran on it (they ask for SA_ONSTACK) and crashed with SIGSEGV in the dynamic linker: `cvsm
serve` died on 5 of 8 SIGTERMs on a 2-core EPYC (Zen 3) and once in CI
(tests/app/test_serve_command.py; tests/model/test_fast_inference.py checks the stack).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from model.inference.backends import Runner


def ov_runner(graph: Path, threads: int | None = None, bf16: bool = False) -> Runner:
    """A compiled model over the ONNX graph with one single-threaded stream per thread
    (`threads`, torch's count by default): a batch is split across the streams and they run at
    once. On the 2-core EPYC, 2 streams of 15 chunks took 10.4 ms in bf16 against 11.4 ms for
    one 2-thread inference of 30 (one inference scales poorly over threads: 1.5x on 2)."""
    import torch

    streams = max(1, threads or torch.get_num_threads())
    config = {
        "INFERENCE_NUM_THREADS": str(streams),
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        "PERFORMANCE_HINT": "THROUGHPUT",
        "NUM_STREAMS": str(streams),
    }
    compiled = _compile_aside(graph, config)
    local = threading.local()  # infer requests are not thread-safe: a set per serving thread

    def run(logmel: np.ndarray) -> np.ndarray:
        requests = getattr(local, "requests", None)
        if requests is None:
            requests = local.requests = [compiled.create_infer_request() for _ in range(streams)]
        parts = np.array_split(np.ascontiguousarray(logmel, np.float32),
                               min(streams, max(1, len(logmel))))
        for request, part in zip(requests, parts, strict=False):
            request.start_async({0: part})
        out = []
        for request, _ in zip(requests, parts, strict=False):
            request.wait()
            out.append(np.array(request.get_output_tensor(0).data, dtype=np.float32))
        return np.concatenate(out)  # copies: each request's buffer is reused

    return run


def _compile_aside(graph: Path, config: dict[str, str]) -> Any:
    """The compiled model, built on a short-lived thread so that the plugin's alternate signal
    stack (module doc) lands there and never on the caller's thread."""
    import openvino as ov

    def compile_graph() -> Any:
        core = ov.Core()
        return core.compile_model(core.read_model(str(graph)), "CPU", config)

    with ThreadPoolExecutor(1, thread_name_prefix="cvsm-ov-compile") as pool:
        return pool.submit(compile_graph).result()
