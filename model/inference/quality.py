"""Quality gates of the approximate backbone paths (bf16, int8), recorded per model.

An approximate path changes the vectors a little; whether it changes what a user gets back is
measured, not assumed: on a catalog of real music, every track is embedded through the fp32
reference and through the fast path, and the fast path passes when each track's top-10
neighbours stay (mean overlap >= 0.98) and mAP (same singer, other songs) is within 0.002 of
the reference's (the owner's rule since 2026-12-08: the seed-to-seed spread of a recipe is
larger than that; before, mAP had to be no lower and the overlap >= 0.95).
`benchmarks/fast_paths.py` measures and writes the records into `fast-paths.json` beside the
model; `auto` (model/inference/selection.py) considers an approximate path only for a model
whose record says it passed, and such a path keeps the model's fingerprint, so an index built on
one machine keeps serving on another that picks a different path. Forced on a model without a
passing record, an approximate path marks the fingerprint (`+int8s`, `+bf16`) instead.

A record holds for the CPU it was measured on only: bf16 and int8 kernels differ between CPUs
(AMX, AVX512-BF16, VNNI, or fp32 emulation), and so do their roundings, so a gate measured on
one machine says nothing certain about another. A file keeps one record per model and CPU;
on a CPU without one, the approximate paths are left out of `auto` (run the benchmark there).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: Approximate backends and the fingerprint mark they carry when not gated for the model.
APPROXIMATE = {"onnx-int8": "+int8s", "openvino-bf16": "+bf16"}
GATES_FILE = "fast-paths.json"
MIN_TOP10_OVERLAP = 0.98
#: How far the fast path's mAP may lie from the reference's, either way.
MAP_TOLERANCE = 0.002


def top10_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per track: |top-10 under a & top-10 under b| / 10, the track itself excluded."""
    def top(x: np.ndarray) -> np.ndarray:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :10]
    ta, tb = top(a), top(b)
    return np.array([len(set(r) & set(s)) / 10 for r, s in zip(ta, tb, strict=True)])


def gate(reference: np.ndarray, fast: np.ndarray, artists: np.ndarray,
         songs: np.ndarray) -> dict:
    """The record of one fast path against the reference vectors of the same tracks."""
    from model.evaluation.retrieval import retrieval_metrics  # scikit-learn: not at start-up

    cos = np.sum(reference * fast, axis=1)
    overlap = top10_overlap(reference, fast)
    ref_map = retrieval_metrics(reference, reference, artists, songs)["map"]
    fast_map = retrieval_metrics(fast, fast, artists, songs)["map"]
    return {
        "tracks": len(reference),
        "cosine_min": round(float(cos.min()), 5),
        "cosine_median": round(float(np.median(cos)), 5),
        "top10_overlap": round(float(overlap.mean()), 4),
        "map": round(float(fast_map), 4),
        "map_reference": round(float(ref_map), 4),
        "passed": bool(overlap.mean() >= MIN_TOP10_OVERLAP
                       and abs(fast_map - ref_map) <= MAP_TOLERANCE),
    }


def gates_path(checkpoint: Path | None) -> Path | None:
    """Where a model's gate records live: `fast-paths.json` in its folder."""
    return None if checkpoint is None else Path(checkpoint).parent / GATES_FILE


def read_gates(path: Path | None) -> dict[str, list[dict]]:
    """All records in a gates file, as {fingerprint: [record per CPU]} ({} when there is none
    or it is unreadable). Files written before records were kept per CPU hold one record per
    fingerprint; it reads as a list of one."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return {fp: value if isinstance(value, list) else [value] for fp, value in data.items()}


def with_record(gates: dict[str, list[dict]], fingerprint: str,
                record: dict) -> dict[str, list[dict]]:
    """`gates` with `record` (which names its "cpu") replacing that model's record of the same
    CPU; records of other CPUs stay."""
    kept = [r for r in gates.get(fingerprint, []) if r.get("cpu") != record.get("cpu")]
    return {**gates, fingerprint: [*kept, record]}


def passed(path: Path | None, fingerprint: str, cpu: str) -> frozenset[str]:
    """The approximate backends whose gate passed for this model on this CPU (`cpu`:
    selection.cpu_signature()); a record from another CPU does not count."""
    records = [r for r in read_gates(path).get(fingerprint, []) if r.get("cpu") == cpu]
    return frozenset(name for r in records for name, rec in r.get("backends", {}).items()
                     if rec.get("passed"))


def gated_elsewhere(path: Path | None, fingerprint: str, cpu: str) -> list[str]:
    """The CPUs (other than `cpu`) on which some approximate path passed for this model: what
    a log line names when `auto` leaves such a path out here."""
    return [r.get("cpu", "unknown CPU") for r in read_gates(path).get(fingerprint, [])
            if r.get("cpu") != cpu and any(rec.get("passed")
                                           for rec in r.get("backends", {}).values())]
