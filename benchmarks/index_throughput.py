"""Throughput of `cvsm index` on this machine: tracks/s and x real time, end to end (decode in
worker processes, embed, SQL commit, FAISS save), on a synthetic catalog.

    python benchmarks/index_throughput.py --singers 6 --songs 4 --seconds 30 --workers 2
    python benchmarks/index_throughput.py --mir1k 1000 --work /tmp/cvsm-idx --backend auto

`--mir1k N` indexes N 30 s tracks cut from MIR-1K mixtures (vocals + accompaniment of the
dev singers' clips, concatenated; track i starts 7.3 i s into that stream, so every track's
audio differs), written once into --work: synthesising 1,000 x 30 s tracks here takes ~1.5 h.
They are 16 kHz mono FLAC, or with `--format mp3` typical music files: 44.1 kHz stereo MP3 at
128 kbit/s (the job then also resamples and downmixes).

Uses the bundled model when present, else a freshly initialised network of the same
architecture (the same cost per second of audio). SQLite in a temporary data dir.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from index.job import JobConfig, run_index
from model import checkpoint
from model.audio.encode import encode
from model.audio.signal import SAMPLE_RATE
from model.data.manifest import read_manifest, write_manifest
from model.data.synth import generate
from model.encoder import CVSMModel
from model.evaluation.data import read_audio
from model.inference.backends import BACKENDS, torch_threads_for
from model.inference.embedder import Embedder
from model.weights import DEFAULT_CHECKPOINT


def model_file(folder: Path) -> Path:
    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    torch.manual_seed(0)
    path = folder / "init.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, path)
    return path


def mir1k_catalog(data: Path, n: int, out: Path, seconds: float = 30.0,
                  fmt: str = "flac") -> Path:
    """`n` tracks of `seconds` cut from the concatenated MIR-1K mixtures (cached): 16 kHz
    FLAC, or 44.1 kHz stereo 128 kbit/s MP3."""
    manifest = out / (f"mir1k-{n}.csv" if fmt == "flac" else f"mir1k-{n}-{fmt}.csv")
    if manifest.is_file():
        return manifest
    (out / "audio").mkdir(parents=True, exist_ok=True)
    parts = []
    for t in read_manifest(data / "clips.csv"):
        v, a = read_audio(t.vocals), read_audio(t.accompaniment)
        m = min(len(v), len(a))
        parts.append(v[:m] + a[:m])
    stream = np.concatenate(parts)
    size, rows = int(seconds * SAMPLE_RATE), []
    for i in range(n):
        start = int(i * 7.3 * SAMPLE_RATE) % (len(stream) - size)
        name = f"audio/track{i:05d}.{fmt}"
        clip = np.clip(stream[start:start + size], -1, 1).astype(np.float32)
        if fmt == "flac":
            sf.write(out / name, clip, SAMPLE_RATE)
        else:
            (out / name).write_bytes(encode(clip, SAMPLE_RATE, "mp3", bit_rate=128_000,
                                            channels=2, out_rate=44_100))
        rows.append({"track_id": f"track{i:05d}", "artist": "", "mixture": name})
    write_manifest(manifest, rows)
    return manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--singers", type=int, default=6)
    p.add_argument("--songs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mir1k", type=int, help="index this many MIR-1K-derived 30 s tracks")
    p.add_argument("--format", default="flac", choices=("flac", "mp3"),
                   help="the MIR-1K-derived tracks' format (mp3: 44.1 kHz stereo)")
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/mir1k-dev"))
    p.add_argument("--work", type=Path, default=Path("/tmp/cvsm-index-bench"),
                   help="where the MIR-1K-derived catalog is kept between runs")
    p.add_argument("--backend", default="torch", choices=BACKENDS)
    p.add_argument("--gate", action="store_true", help="vocal gate on")
    p.add_argument("--separation", action="store_true",
                   help="vocal separation on (the service's default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", type=Path,
                   help="model to index with (default: the bundled one), e.g. an earlier default")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.mir1k:
            manifest = mir1k_catalog(args.data, args.mir1k, args.work, args.seconds,
                                     args.format)
        else:
            manifest = generate(tmp / "catalog", args.singers, args.songs, args.seconds, seed=0)
        ckpt = args.checkpoint or model_file(tmp)
        embedder = Embedder.from_checkpoint(ckpt, "cpu", backend=args.backend, gate=args.gate,
                                            threads=args.threads, separation=args.separation)
        torch.set_num_threads(torch_threads_for(embedder.backend, args.threads))
        cfg = JobConfig(manifest, tmp / "data", workers=args.workers, batch=args.batch,
                        progress=False)
        first = run_index(cfg, embedder)
        again = run_index(cfg, embedder)
    print(first.line())
    print("re-run:", again.line())
    print(json.dumps({"tracks": first.indexed, "audio_s": round(first.audio_seconds, 1),
                      "seconds": round(first.seconds, 1),
                      "tracks_per_s": round(first.tracks_per_s, 3),
                      "x_realtime": round(first.realtime, 2), "rerun_s": round(again.seconds, 2),
                      "model": ("bundled" if ckpt == DEFAULT_CHECKPOINT
                                else str(args.checkpoint or "untrained B0")),
                      "backend": embedder.backend, "gate": args.gate,
                      "separation": args.separation, "workers": args.workers,
                      "batch": args.batch,
                      "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    main()
