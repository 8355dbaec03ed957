"""End-to-end embedding latency of one 30 s MP3, stage by stage, for every inference path.

    taskset -c 0,1 python benchmarks/embed_latency.py --clips 5 --repeats 7 --out lat.json

Stages (the query path of `cvsm serve`): decode (PyAV: MP3 -> 16 kHz mono, resampled in
FFmpeg), chunk (5 s block normalisation, 1 s chunks), features (log-mel of all chunks in one
torch batch), select (sound mask, plus the vocal gate when on), backbone (only the selected
chunks), pool. Systems, measured on the same clips in the same run, interleaved round by round
so machine load hits them alike: eager torch (the reference), ONNX Runtime fp32, ONNX Runtime
fp32 + vocal gate, ONNX int8, and Resemblyzer (its own pipeline: preprocess_wav + embed_utterance
on the decoded audio). Clips: 30 s of MIR-1K mixtures (one singer's clips concatenated,
singing + accompaniment) encoded to 128 kbit/s MP3, or synthetic singing without --data; at
16 kHz mono (MIR-1K's own rate) or, with --rate 44100 --channels 2, as a typical music file
(the decoder then also resamples and downmixes).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from model.audio.decode import decode
from model.audio.encode import encode
from model.audio.signal import chunk, pool
from model.data.manifest import read_manifest
from model.data.synth import accompany, make_singer, make_song, sing
from model.evaluation.data import read_audio
from model.inference.backends import torch_threads_for
from model.inference.embedder import Embedder
from model.weights import default_checkpoint

SECONDS = 30


def to_mp3(wave: np.ndarray, rate: int, channels: int) -> bytes:
    """A 128 kbit/s MP3 of 16 kHz `wave`, resampled to `rate`, with `channels` channels."""
    return encode(wave, 16_000, "mp3", bit_rate=128_000, channels=channels, out_rate=rate)


def mir1k_clips(data: Path, n: int, rate: int = 16_000, channels: int = 1) -> list[bytes]:
    """`n` 30 s MP3s, each one singer's consecutive mixtures."""
    by_singer: dict[str, list] = defaultdict(list)
    for t in read_manifest(data / "clips.csv"):
        by_singer[t.artist].append(t)
    out = []
    for singer in sorted(by_singer)[:n]:
        wave = np.zeros(0, np.float32)
        for t in by_singer[singer]:
            v, a = read_audio(t.vocals), read_audio(t.accompaniment)
            m = min(len(v), len(a))
            wave = np.concatenate([wave, v[:m] + a[:m]])
            if len(wave) >= SECONDS * 16_000:
                break
        wave = wave[: SECONDS * 16_000]
        out.append(to_mp3(wave / max(np.abs(wave).max(), 1e-6) * 0.9, rate, channels))
    return out


def synth_clips(n: int, rate: int = 16_000, channels: int = 1) -> list[bytes]:
    clips = []
    for i in range(n):
        singer, song = make_singer(i, 1), make_song(i, 1)
        vocals, _ = sing(singer, song, SECONDS, i)
        clips.append(to_mp3(vocals + accompany(song, SECONDS, i), rate, channels))
    return clips


def cvsm_stages(emb: Embedder, data: bytes) -> dict[str, float]:
    """One query through the embedder's own steps, timed (ms); returns stage -> ms."""
    t = [time.perf_counter()]
    wave = decode(data).samples
    t.append(time.perf_counter())
    chunks = chunk(wave)
    t.append(time.perf_counter())
    logmel = emb.features(chunks)
    t.append(time.perf_counter())
    mask = emb.select(chunks, logmel)
    t.append(time.perf_counter())
    out = emb.backbone(logmel[torch.from_numpy(mask)])
    t.append(time.perf_counter())
    pool(out)
    t.append(time.perf_counter())
    names = ("decode", "chunk", "features", "select", "backbone", "pool")
    stages = {k: (b - a) * 1000 for k, a, b in zip(names, t, t[1:], strict=False)}
    stages["chunks_embedded"] = float(mask.sum())
    return stages


class Resemblyzer:
    """The package's documented path: preprocess_wav (VAD, level) + embed_utterance."""

    def __init__(self) -> None:
        from resemblyzer import VoiceEncoder, preprocess_wav

        self.encoder, self.preprocess = VoiceEncoder(device="cpu", verbose=False), preprocess_wav

    def stages(self, data: bytes) -> dict[str, float]:
        t0 = time.perf_counter()
        wave = decode(data).samples
        t1 = time.perf_counter()
        prepared = self.preprocess(wave)
        t2 = time.perf_counter()
        self.encoder.embed_utterance(prepared)
        t3 = time.perf_counter()
        return {"decode": (t1 - t0) * 1000, "features": (t2 - t1) * 1000,
                "backbone": (t3 - t2) * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/mir1k-dev"))
    p.add_argument("--clips", type=int, default=5)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rate", type=int, default=16_000, help="the MP3s' sample rate")
    p.add_argument("--channels", type=int, default=1, choices=(1, 2))
    p.add_argument("--no-resemblyzer", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.data.is_dir():
        clips = mir1k_clips(args.data, args.clips, args.rate, args.channels)
    else:
        clips = synth_clips(args.clips, args.rate, args.channels)
    ckpt = default_checkpoint()
    systems: dict[str, object] = {
        "torch eager": Embedder.from_checkpoint(ckpt, "cpu", backend="torch"),
        "onnx fp32": Embedder.from_checkpoint(ckpt, "cpu", backend="onnx",
                                              threads=args.threads),
        "onnx fp32 + gate": Embedder.from_checkpoint(ckpt, "cpu", backend="onnx", gate=True,
                                                     threads=args.threads),
        "onnx int8": Embedder.from_checkpoint(ckpt, "cpu", backend="onnx-int8",
                                              threads=args.threads),
    }
    if not args.no_resemblyzer:
        systems["resemblyzer"] = Resemblyzer()
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for rep in range(args.repeats + 1):  # round 0 warms up (allocations, graph optimisation)
        for data in clips:
            for name, s in systems.items():
                backend = "torch" if isinstance(s, Resemblyzer) else s.backend
                torch.set_num_threads(torch_threads_for(backend, args.threads))  # as the app
                st = s.stages(data) if isinstance(s, Resemblyzer) else cvsm_stages(s, data)
                st["total"] = sum(v for k, v in st.items() if k != "chunks_embedded")
                if rep:
                    runs[name].append(st)
    ref = float(np.median([r["total"] for r in runs["torch eager"]]))
    result = {"clips": len(clips), "repeats": args.repeats, "threads": args.threads,
              "rate": args.rate, "channels": args.channels,
              "mp3_kb": round(float(np.mean([len(c) for c in clips])) / 1024),
              "source": "mir1k" if args.data.is_dir() else "synth", "systems": {}}
    for name, rs in runs.items():
        med = {k: round(float(np.median([r[k] for r in rs])), 2) for k in rs[0]}
        totals = np.array([r["total"] for r in rs])
        med["p90_total"] = round(float(np.percentile(totals, 90)), 2)
        med["min_total"] = round(float(totals.min()), 2)  # the least-disturbed run
        med["vs_eager"] = round(med["total"] / ref, 3)
        result["systems"][name] = med
        print(name, json.dumps(med), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
