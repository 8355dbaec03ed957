"""The separation stage measured: quality of each saving (SDR of the separated voice against the
vocal stem) and the speed of each runtime against eager torch (docs/benchmarks.md, Separation).

    python benchmarks/separation_speed.py --data MIR1K_DEV/clips.csv \
        --out docs/results/bench-2026-12-08/separation-speed.json

Quality: 10 MIR-1K dev clips (every 60th), mixture = vocals + accompaniment, separated by
Spleeter's own recipe at 44.1 kHz (the clips upsampled; both networks' ratio mask), and by the
savings: the same at 16 kHz with the window scaled (768 bins), and the vocal network's mask
alone. Speed: one 30 s 16 kHz mixture, each runtime (torch, ONNX Runtime, OpenVINO fp32 and
bf16) and mask, median of 5 after a warm-up, with the relative RMS error against torch.
Memory: the process's peak resident size before and after separating a 10-minute track with
the served runtime (ONNX Runtime), measured first so nothing else has raised the peak.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from model.audio.decode import load
from model.inference.selection import cpu_signature
from model.separation.runtime import with_runtime
from model.separation.separator import MODES, Separator

RUNTIMES = ("torch", "onnx", "openvino", "openvino-bf16")


def clips(data: Path, every: int = 60, n: int = 10) -> tuple[list, list]:
    """(mixtures, vocal stems) of every `every`-th clip."""
    rows = list(csv.DictReader(data.open()))[::every][:n]
    voc = [load(data.parent / r["vocals"]) for r in rows]
    acc = [load(data.parent / r["accompaniment"]) for r in rows]
    voc = [v[: min(len(v), len(a))] for v, a in zip(voc, acc, strict=True)]
    mix = [v + a[: len(v)] for v, a in zip(voc, acc, strict=True)]
    return mix, voc


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


def quality(mix: list, voc: list) -> dict:
    out = {"mixture as is": round(float(np.mean([sdr(v, m) for v, m in zip(voc, mix,
                                                                          strict=True)])), 2)}
    for mode, rate in (("ratio", 44_100), ("ratio", 16_000), ("vocal-net", 16_000)):
        sep = Separator.load(mode, "cpu", rate)
        ins = mix if rate == 16_000 else [resample_poly(m, 441, 160).astype(np.float32)
                                          for m in mix]
        sep.vocals(ins[:1])  # warm-up
        start = time.perf_counter()
        est = sep.vocals(ins)
        took = time.perf_counter() - start
        if rate != 16_000:
            est = [resample_poly(e, 160, 441)[: len(m)] for e, m in zip(est, mix, strict=True)]
        out[f"{mode} at {rate} Hz"] = {
            "sdr_db": round(float(np.mean([sdr(v, e) for v, e in zip(voc, est, strict=True)])), 2),
            "torch_s": round(took, 2), "audio_s": round(sum(len(m) for m in mix) / 16_000, 1)}
    return out


def long_track_memory(threads: int, cache: Path, minutes: float = 10.0) -> dict:
    """Peak RSS (MB) before and after separating `minutes` of noise, and the time it took."""
    import resource

    from model.separation.runtime import load_separator

    sep = load_separator("cpu", "onnx", threads, cache)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wave = (0.1 * np.random.default_rng(0).normal(size=int(minutes * 60 * 16_000))
            ).astype(np.float32)
    start = time.perf_counter()
    sep.vocals([wave])
    return {"minutes": minutes, "peak_rss_mb_before": round(before),
            "peak_rss_mb_after": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "seconds": round(time.perf_counter() - start, 1)}


def speed(wave: np.ndarray, threads: int, cache: Path) -> dict:
    out: dict = {}
    for mode in MODES:
        reference = None
        for runtime in RUNTIMES:
            sep = with_runtime(Separator.load(mode, "cpu"), runtime, threads, cache)
            sep.vocals([wave])
            times = []
            for _ in range(5):
                start = time.perf_counter()
                got = sep.vocals([wave])[0]
                times.append((time.perf_counter() - start) * 1000)
            reference = got if reference is None else reference
            err = float(np.sqrt(np.mean((got - reference) ** 2) / np.mean(reference ** 2)))
            out.setdefault(mode, {})[runtime] = {"median_ms": round(float(np.median(times)), 1),
                                                 "rel_error_vs_torch": err}
            print(mode, runtime, out[mode][runtime], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="MIR-1K dev clips.csv")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", type=Path, default=Path("runs/separation-cache"))
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    result = {"cpu": cpu_signature(), "threads": args.threads,
              "long_track": long_track_memory(args.threads, args.cache_dir)}
    print(json.dumps(result["long_track"]), flush=True)
    mix, voc = clips(args.data)
    result["quality"] = quality(mix, voc)
    print(json.dumps(result["quality"]), flush=True)
    result["speed_30s"] = speed(np.concatenate(mix)[: 30 * 16_000], args.threads, args.cache_dir)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
