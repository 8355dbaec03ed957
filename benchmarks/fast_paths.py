"""Quality gates of every fast path on real music, and the new decoder's equivalence.

    python benchmarks/fast_paths.py --out runs/fast_paths.json \
        --write model/weights/fast-paths.json

1. Backbone paths. Every MIR-1K dev mixture (vocals + accompaniment, 746 tracks, 16 kHz) is
   embedded by the bundled model (or `--checkpoint`) through the plain PyTorch path (the
   reference) and through each fast path: ONNX Runtime fp32 and OpenVINO fp32 (exact), OpenVINO
   bf16 and ONNX Runtime static int8 (approximate). Per path: cosine to the reference per
   track, the overlap of each track's top-10 neighbours (itself excluded), mix -> mix mAP (same
   singer, other songs; the bundled model heard these singers, so only differences between rows
   mean anything) and the verdict of model/inference/quality.py (overlap >= 0.98, mAP within
   0.002). `--write` records the verdicts where `auto` reads them.
2. Decoder. Each mixture encoded as a 44.1 kHz stereo 128 kbit/s MP3 is decoded by the earlier
   path (FFmpeg + libswresample) and by today's (libsndfile + libswresample), both embedded by the
   reference: cosine per track, and how many tracks keep exactly the same top-10.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.audio.decode import decode
from model.audio.encode import encode
from model.data.manifest import read_manifest
from model.evaluation.data import read_audio
from model.files import atomic_write_text
from model.inference import quality
from model.inference.embedder import Embedder
from model.inference.selection import cpu_signature
from model.weights import default_checkpoint

PATHS = ("onnx", "openvino", "openvino-bf16", "onnx-int8")


def mixtures(data: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    tracks = read_manifest(data / "clips.csv")
    waves = []
    for t in tracks:
        v, a = read_audio(t.vocals), read_audio(t.accompaniment)
        n = min(len(v), len(a))
        waves.append(v[:n] + a[:n])
    return waves, np.array([t.artist for t in tracks]), np.array([t.song for t in tracks])


def embed_all(embedder: Embedder, waves: list[np.ndarray], label: str) -> np.ndarray:
    return np.concatenate([embedder.embed_many(waves[i:i + 32])
                           for i in tqdm(range(0, len(waves), 32), desc=label, leave=False)])


def same_top10(a: np.ndarray, b: np.ndarray) -> float:
    """Share of tracks whose top-10 neighbours are the same set under a and b."""
    return float(np.mean(quality.top10_overlap(a, b) == 1.0))


def decoder_check(reference: Embedder, waves: list[np.ndarray]) -> dict:
    mp3s = [encode(w / max(float(np.abs(w).max()), 1e-6) * 0.9, 16_000, "mp3", bit_rate=128_000,
                   channels=2, out_rate=44_100) for w in tqdm(waves, desc="mp3", leave=False)]
    old = [decode(m, decoder="ffmpeg").samples for m in mp3s]
    new = [decode(m).samples for m in mp3s]
    a, b = embed_all(reference, old, "old decoder"), embed_all(reference, new, "new decoder")
    cos = np.sum(a * b, axis=1)
    return {"tracks": len(mp3s), "cosine_min": round(float(cos.min()), 6),
            "cosine_median": round(float(np.median(cos)), 6),
            "same_top10_share": round(same_top10(a, b), 4),
            "top10_overlap": round(float(quality.top10_overlap(a, b).mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/mir1k-dev"))
    p.add_argument("--out", type=Path)
    p.add_argument("--write", type=Path, help="gates file to record the verdicts in")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="model to gate (default: the bundled one)")
    args = p.parse_args()
    torch.set_num_threads(2)
    waves, artists, songs = mixtures(args.data)
    ckpt = args.checkpoint or default_checkpoint()
    reference = Embedder.from_checkpoint(ckpt, "cpu", backend="torch")
    ref = embed_all(reference, waves, "torch")
    records = {}
    for name in PATHS:
        try:
            fast = Embedder.from_checkpoint(ckpt, "cpu", backend=name, threads=2)
        except ValueError as exc:  # a path this model's architecture cannot take (int8 of
            records[name] = {"passed": False, "skipped": str(exc)}  # the voice-lstm)
            print(name, "skipped:", exc, flush=True)
            continue
        records[name] = quality.gate(ref, embed_all(fast, waves, name), artists, songs)
        print(name, json.dumps(records[name]), flush=True)
    fingerprint = reference.fingerprint
    report = {"fingerprint": fingerprint, "cpu": cpu_signature(),
              "measured": datetime.now(UTC).isoformat(timespec="seconds"),
              "catalog": f"MIR-1K dev mixtures, {len(waves)} tracks",
              "backends": records, "decoder": decoder_check(reference, waves)}
    print(json.dumps(report["decoder"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    if args.write:
        record = {k: report[k] for k in ("catalog", "cpu", "measured", "backends")}
        gates = quality.with_record(quality.read_gates(args.write), fingerprint, record)
        atomic_write_text(args.write, json.dumps(gates, indent=1) + "\n")


if __name__ == "__main__":
    main()
