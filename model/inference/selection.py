"""`auto` on a CPU: the fastest backbone runtime on this machine, chosen by measuring.

Which runtime wins depends on the CPU's units (AVX-512, VNNI, AVX512-BF16, AMX), not on its
brand: on the 2-core AMD EPYC (Zen 4) OpenVINO bf16 beat ONNX Runtime fp32 by 1.15x while int8
gained less, and on other CPUs the order differs (docs/benchmarks.md). So at start-up every
candidate (each installed exact runtime, plus each approximate one whose quality gate passed for
this model, model/inference/quality.py) runs the backbone on one fixed 30-chunk batch, the size
of a 30 s query, and the fastest median wins. The choice is cached in a JSON file keyed by the
CPU (model name and instruction-set flags), thread count, model fingerprint and runtime
versions, so later starts on the same machine skip the probe (~1 s) and any change re-probes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.files import atomic_write_text
from model.inference.backends import Runner, default_cache_dir

log = logging.getLogger("cvsm.model")
#: Exact runtimes (same vectors as torch to ~1e-6) in the order tried on a tie.
EXACT = ("onnx", "openvino")
CACHE_FILE = "backend-probe.json"
PROBE_CHUNKS = 30
PROBE_REPEATS = 5


def cpu_signature() -> str:
    """The CPU's model name and a hash of its instruction-set flags (Linux /proc/cpuinfo;
    `platform` elsewhere): what decides kernel speed, used as a cache key only."""
    name, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not name:
                name = value
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    return f"{name} [{hashlib.sha256(flags.encode()).hexdigest()[:12]}]"


def _versions() -> str:
    out = []
    for module in ("onnxruntime", "openvino", "torch"):
        try:
            out.append(f"{module}={__import__(module).__version__}")
        except ImportError:
            continue
    return ",".join(out)


def cache_path(checkpoint: Path | None, cache_dir: Path | None) -> Path:
    """Where probe results are kept: `cache_dir` when given (the service's data folder), else
    beside a writable checkpoint, else the user cache (as for ONNX graphs)."""
    if cache_dir is not None:
        return Path(cache_dir) / CACHE_FILE
    if checkpoint is not None and os.access(Path(checkpoint).parent, os.W_OK):
        return Path(checkpoint).parent / CACHE_FILE
    return default_cache_dir() / CACHE_FILE


def installed(backend: str) -> bool:
    module = {"onnx": "onnxruntime", "openvino": "openvino"}[backend.split("-")[0]]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def candidates(gated: frozenset[str]) -> list[str]:
    """What `auto` measures on a CPU: the installed exact runtimes, then the installed
    approximate ones that passed their quality gate for this model."""
    approximate = [name for name in ("openvino-bf16", "onnx-int8") if name in gated]
    return [name for name in (*EXACT, *approximate) if installed(name)]


def probe_key(fingerprint: str, threads: int, candidates: list[str]) -> str:
    return "|".join([cpu_signature(), f"threads={threads}", fingerprint, _versions(),
                     ",".join(candidates)])


def probe_batch(shape: tuple[int, int] = (98, 64)) -> np.ndarray:
    """A fixed (30, frames, mels) batch shaped like the backbone's input (the default: the
    EfficientNet's log-mel): runtimes' speed does not depend on the values (denormals are
    flushed), so no audio needs synthesising at start-up."""
    rng = np.random.default_rng(0)
    return rng.normal(-4.0, 2.0, (PROBE_CHUNKS, *shape)).astype(np.float32)


def time_runners(runners: dict[str, Runner], batch: np.ndarray,
                 repeats: int = PROBE_REPEATS) -> dict[str, float]:
    """Median milliseconds of each runner on `batch`, after two warm-up calls each. The
    runners take turns round by round, so a passing load on the machine hits them alike."""
    for run in runners.values():
        run(batch)
        run(batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(batch)
            times[name].append(time.perf_counter() - start)
    return {name: round(float(np.median(t)) * 1000, 2) for name, t in times.items()}


def _read(cache: Path) -> dict:
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}


def choose(candidates: list[str], build: Callable[[str], Runner], fingerprint: str,
           threads: int, cache: Path | None,
           shape: tuple[int, int] = (98, 64)) -> tuple[str, Runner, dict]:
    """The fastest candidate and its runner, from the cache when this machine measured it
    already (`shape`: the backbone's (frames, mels) input); returns (backend, runner, the
    probe's record)."""
    key = probe_key(fingerprint, threads, candidates)
    records = _read(cache) if cache is not None else {}
    known = records.get(key)
    if known and known.get("choice") in candidates:
        return known["choice"], build(known["choice"]), known
    runners = {}
    for name in candidates:
        try:
            runners[name] = build(name)
        except Exception as exc:  # noqa: BLE001 - a runtime that fails to load is skipped
            log.warning("backend %s unavailable here: %s", name, exc)
    timings = time_runners(runners, probe_batch(shape))
    if not timings:
        raise RuntimeError(f"no backbone runtime could be loaded (tried {candidates})")
    choice = min(timings, key=lambda name: (timings[name], candidates.index(name)))
    record = {"choice": choice, "ms_per_30_chunks": timings, "cpu": cpu_signature(),
              "threads": threads, "fingerprint": fingerprint,
              "measured": datetime.now(UTC).isoformat(timespec="seconds")}
    log.info("backend probe: %s (%s)", choice, timings)
    if cache is not None:
        records[key] = record
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps(records, indent=1))
        except OSError as exc:  # a read-only cache only costs a probe next time
            log.warning("cannot cache the backend probe in %s: %s", cache, exc)
    return choice, runners[choice], record
