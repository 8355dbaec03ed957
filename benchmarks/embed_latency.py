"""End-to-end embedding latency of one 30 s MP3, stage by stage, for every inference path.

    python benchmarks/embed_latency.py --rate 44100 --channels 2 --clips 5 --repeats 7 \
        --out runs/latency.json

Stages (the query path of `cvsm serve`): decode (MP3 -> 16 kHz mono: libsndfile +
libswresample, model/audio/decode.py), chunk (5 s block normalisation, 1 s chunks), features
(log-mel of all chunks in one torch batch), select (sound mask, plus the vocal gate when on),
backbone (only the selected chunks), pool. Systems, measured on the same clips in the same run,
interleaved round by round so machine load hits them alike: eager torch (the reference), `auto`
(what the start-up probe picked on this machine), ONNX Runtime fp32, OpenVINO fp32, OpenVINO
bf16, ONNX Runtime int8, `auto` and eager torch with the front end's earlier one-pass STFT of
all chunks (`--one-pass`: model/audio/features.py's CPU_BLOCK lifted, the "before" of the
cache-sized blocks, side by side), and Resemblyzer (its own pipeline: preprocess_wav +
embed_utterance on the audio decoded by the project). Beside them, on the same clips: the bare
FFmpeg decode (PyAV frames, no conversion: the floor) and the earlier decoder (FFmpeg +
libswresample). Printed per system: stage medians, decode / bare decode, total / eager torch
and total / Resemblyzer (its faster thread setting in this run). Clips: 30 s of MIR-1K mixtures
(one singer's clips concatenated, singing + accompaniment) encoded to 128 kbit/s MP3, or
synthetic singing without --data; at 16 kHz mono (MIR-1K's own rate) or, with --rate 44100
--channels 2, as a typical music file (the decoder then also resamples and downmixes).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from model.audio import features
from model.audio.decode import decode
from model.audio.encode import encode
from model.audio.signal import chunk, pool
from model.data.manifest import read_manifest
from model.data.synth import accompany, make_singer, make_song, sing
from model.evaluation.data import read_audio
from model.inference.backends import torch_threads_for
from model.inference.embedder import Embedder
from model.inference.selection import cpu_signature
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
    wave = decode(data, threads=emb.lanes).samples  # as the service decodes a query
    t.append(time.perf_counter())
    chunks = chunk(wave, emb.model.context)
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


class OnePass:
    """An embedder whose log-mel front end runs all chunks in one pass, as before the
    cache-sized blocks (features.CPU_BLOCK), so both are timed in the same run."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder, self.backend = embedder, embedder.backend

    def stages(self, data: bytes) -> dict[str, float]:
        block, features.CPU_BLOCK = features.CPU_BLOCK, 1 << 30
        try:
            return cvsm_stages(self.embedder, data)
        finally:
            features.CPU_BLOCK = block


class Separated:
    """`auto` with vocal separation in front (`cvsm serve --separation on`): decode, separate
    (Spleeter, model/separation/) with its singing verdict, then the mixture and the voice each
    embedded over the sung seconds and joined, as `Embedder.embed_many` does."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder, self.backend = embedder, embedder.backend

    def stages(self, data: bytes) -> dict[str, float]:
        emb = self.embedder
        t0 = time.perf_counter()
        wave = decode(data, threads=emb.lanes).samples
        t1 = time.perf_counter()
        voices, sung = emb.singing([wave])
        t2 = time.perf_counter()
        emb.separator, kept = None, emb.separator  # the voice is already separated
        try:
            emb.embed_many([*voices, wave], sung + sung)  # voice and mixture, one pass
        finally:
            emb.separator = kept
        t3 = time.perf_counter()
        return {"decode": (t1 - t0) * 1000, "separate": (t2 - t1) * 1000,
                "embed": (t3 - t2) * 1000, "chunks_embedded": float(sung[0].sum())}


class Resemblyzer:
    """The package's documented path: preprocess_wav (VAD, level) + embed_utterance, on the
    audio decoded the way the project decodes a query. `threads`: torch's intra-op threads
    for its LSTM (torch's default is every core; one thread was faster and steadier here)."""

    def __init__(self, threads: int) -> None:
        from resemblyzer import VoiceEncoder, preprocess_wav

        self.encoder, self.preprocess = VoiceEncoder(device="cpu", verbose=False), preprocess_wav
        self.threads = threads

    def stages(self, data: bytes) -> dict[str, float]:
        t0 = time.perf_counter()
        wave = decode(data, threads=2).samples
        t1 = time.perf_counter()
        prepared = self.preprocess(wave)
        t2 = time.perf_counter()
        self.encoder.embed_utterance(prepared)
        t3 = time.perf_counter()
        return {"decode": (t1 - t0) * 1000, "features": (t2 - t1) * 1000,
                "backbone": (t3 - t2) * 1000}


def bare_decode(data: bytes) -> float:
    """FFmpeg's own pace: demux and decode every frame through PyAV, nothing else (ms)."""
    import av

    start = time.perf_counter()
    with av.open(io.BytesIO(data)) as container:
        for _ in container.decode(audio=0):
            pass
    return (time.perf_counter() - start) * 1000


def earlier_decode(data: bytes) -> float:
    """The decoder before issue 14 (FFmpeg frames + libswresample), the reference (ms)."""
    start = time.perf_counter()
    decode(data, decoder="ffmpeg")
    return (time.perf_counter() - start) * 1000


def build_systems(args: argparse.Namespace) -> dict[str, object]:
    ckpt, cache = default_checkpoint(), args.cache_dir
    systems: dict[str, object] = {
        "torch eager": Embedder.from_checkpoint(ckpt, "cpu", backend="torch"),
        "auto": Embedder.from_checkpoint(ckpt, "cpu", backend="auto", threads=args.threads,
                                         cache_dir=cache),
    }
    for backend in ("onnx", "openvino", "openvino-bf16", "onnx-int8"):
        try:
            systems[backend] = Embedder.from_checkpoint(ckpt, "cpu", backend=backend,
                                                        threads=args.threads, cache_dir=cache)
        except ValueError as exc:  # a path this model cannot take (int8 of the voice-lstm)
            print(f"skipping {backend}: {exc}")
    for other in args.also:  # another model beside the bundled one, in the same run
        systems[f"torch eager ({other.stem})"] = Embedder.from_checkpoint(other, "cpu")
        systems[f"auto ({other.stem})"] = Embedder.from_checkpoint(
            other, "cpu", backend="auto", threads=args.threads, cache_dir=cache)
    if args.one_pass:
        systems["auto, one-pass front end"] = OnePass(Embedder.from_checkpoint(
            ckpt, "cpu", backend="auto", threads=args.threads, cache_dir=cache))
        systems["torch eager, one-pass front end"] = OnePass(
            Embedder.from_checkpoint(ckpt, "cpu", backend="torch"))
    if args.separation:
        systems["auto + separation"] = Separated(Embedder.from_checkpoint(
            ckpt, "cpu", backend="auto", threads=args.threads, cache_dir=cache,
            separation=True))
    if not args.no_resemblyzer:
        systems["resemblyzer, 2 threads"] = Resemblyzer(2)
        systems["resemblyzer, 1 thread"] = Resemblyzer(1)
    return systems


def measure(systems: dict[str, object], clips: list[bytes], args: argparse.Namespace
            ) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for rep in range(args.repeats + 1):  # round 0 warms up (allocations, graph optimisation)
        for data in clips:
            floor = {"decode": bare_decode(data)}
            earlier = {"decode": earlier_decode(data)}
            for name, s in systems.items():
                time.sleep(0.05)  # let the previous system's idle OpenMP/TBB workers stop
                # spinning: otherwise whichever system follows a torch one pays for them
                if isinstance(s, Resemblyzer):
                    threads = s.threads
                else:
                    threads = args.feature_threads or torch_threads_for(s.backend, args.threads)
                torch.set_num_threads(threads)  # as the app sets it
                st = s.stages(data) if isinstance(s, Resemblyzer | OnePass | Separated) \
                    else cvsm_stages(s, data)
                st["total"] = sum(v for k, v in st.items() if k != "chunks_embedded")
                if rep:
                    runs[name].append(st)

            if rep:
                runs["bare FFmpeg decode"].append({**floor, "total": floor["decode"]})
                runs["earlier decoder"].append({**earlier, "total": earlier["decode"]})
    return runs


def summarise(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Medians per stage, plus the ratios the issue asks for, all from this one run."""
    med = {name: {k: round(float(np.median([r[k] for r in rs])), 2) for k in rs[0]}
           for name, rs in runs.items()}
    floor = med["bare FFmpeg decode"]["decode"]
    eager = med["torch eager"]["total"]
    resem = min((m["total"] for name, m in med.items() if name.startswith("resemblyzer")),
                default=None)  # the faster of its two thread settings: the harder bar
    for name, m in med.items():
        totals = np.array([r["total"] for r in runs[name]])
        m["p90_total"] = round(float(np.percentile(totals, 90)), 2)
        if "decode" in m:
            m["decode_vs_bare"] = round(m["decode"] / floor, 3)
        m["vs_eager"] = round(m["total"] / eager, 3)
        if resem:
            m["vs_resemblyzer"] = round(m["total"] / resem, 3)
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/mir1k-dev"))
    p.add_argument("--clips", type=int, default=5)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--feature-threads", type=int, default=0,
                   help="torch threads for the log-mel front end (0: as the app sets them)")
    p.add_argument("--rate", type=int, default=16_000, help="the MP3s' sample rate")
    p.add_argument("--channels", type=int, default=1, choices=(1, 2))
    p.add_argument("--cache-dir", type=Path, default=Path("runs/latency-cache"))
    p.add_argument("--no-resemblyzer", action="store_true")
    p.add_argument("--also", type=Path, nargs="*", default=[], metavar="PT",
                   help="other models (e.g. an earlier default) timed beside the bundled one")
    p.add_argument("--one-pass", action="store_true",
                   help="also time auto and eager with the earlier one-pass log-mel front end")
    p.add_argument("--separation", action="store_true",
                   help="also time `auto` with vocal separation in front")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.data.is_dir():
        clips = mir1k_clips(args.data, args.clips, args.rate, args.channels)
    else:
        clips = synth_clips(args.clips, args.rate, args.channels)
    systems = build_systems(args)
    auto = systems["auto"]
    print(f"cpu: {cpu_signature()}; auto chose {auto.backend} "
          f"({auto.probe and auto.probe['ms_per_30_chunks']})", flush=True)
    med = summarise(measure(systems, clips, args))
    for name, m in med.items():
        print(name, json.dumps(m), flush=True)
    result = {"cpu": cpu_signature(), "clips": len(clips), "repeats": args.repeats,
              "threads": args.threads, "rate": args.rate, "channels": args.channels,
              "mp3_kb": round(float(np.mean([len(c) for c in clips])) / 1024),
              "source": "mir1k" if args.data.is_dir() else "synth", "auto": auto.backend,
              "probe": auto.probe, "systems": med}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
