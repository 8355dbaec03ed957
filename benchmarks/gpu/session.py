"""One lent-GPU session, time-boxed: cache, throughput, a singer-disjoint six-system fold,
selection of the best system, and the final model on all singers.

Usage (on the GPU machine, repo root on PYTHONPATH):
  python benchmarks/gpu/session.py main --data .gpu/mir1k/clips.csv --out $OUT --budget 480
Writes cv_<system>.pt (inference exports of each fold model), final.pt, logs.tar.gz.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import checkpoint as ckpt_io  # noqa: E402
from model.data.manifest import read_manifest  # noqa: E402
from model.training.bank import build_bank  # noqa: E402
from model.training.config import load_config  # noqa: E402
from model.training.loop import Trainer  # noqa: E402

SYSTEMS = ["cola", "cola_art", "mscol", "cvsm_art", "cvsm_a", "cvsm_ah"]
#: Singers held out of fold training and used for selection (2 female, 4 male of 13).
HELD_OUT = ["yifen", "Ani", "geniusturtle", "jmzen", "bobon", "abjones"]


def child(args: argparse.Namespace) -> None:
    """Train one system until the deadline, then export its last weights."""
    torch.set_num_threads(2)
    cfg = load_config(args.config)
    cfg.eval_interval, cfg.log_interval = args.eval_interval, 20
    if args.val_artists:
        cfg.val_artists = args.val_artists.split(",")
    else:
        cfg.val_fraction = 0.05
    if args.batch:
        cfg.batch_size = args.batch
    if args.bilinear_std is not None:
        cfg.bilinear_std = args.bilinear_std
    trainer = Trainer(cfg, args.data, args.out, device=args.device, cache_dir=args.cache,
                      quiet=True)
    summary = trainer.run(steps=10**7, max_seconds=args.seconds)
    last = ckpt_io.load(args.out / "last.pt")
    ckpt_io.export_inference(last, args.export, extra={
        "train_artists": last["train_artists"], "val_artists": last["val_artists"]})
    print(json.dumps(summary))


def spawn(system: str, args: argparse.Namespace, out: Path, cache: Path, seconds: float,
          export: Path, val_artists: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "child", "--config", str(ROOT / "configs" / f"{system}.toml"),
           "--data", str(args.data), "--out", str(out), "--cache", str(cache), "--seconds",
           str(seconds), "--export", str(export), "--val-artists", val_artists,
           "--device", args.device, "--batch", str(args.batch), *extra]
    log = (out.parent / f"{out.name}.log").open("w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def track_vectors(export: Path, bank, idx: np.ndarray, stem: str, device: str) -> np.ndarray:
    from model.inference.embedder import Embedder

    emb = Embedder.from_checkpoint(export, device=device, batch_size=512)
    waves = [np.asarray(bank.stems[stem][bank.starts[i]:bank.starts[i] + bank.lengths[i]],
                        dtype=np.float32) for i in idx]
    return emb.embed_many(waves)


def mean_ap(queries: np.ndarray, catalog: np.ndarray, q_meta, c_meta) -> float:
    """mAP of same-singer items, catalog restricted to other songs than the query's."""
    from sklearn.metrics import average_precision_score

    scores = queries @ catalog.T
    aps = []
    for i, (artist, song) in enumerate(q_meta):
        keep = np.array([s != song for _, s in c_meta])
        rel = np.array([a == artist for a, _ in c_meta])[keep]
        if rel.any():
            aps.append(average_precision_score(rel, scores[i][keep]))
    return float(np.mean(aps))


def select(bank, exports: dict[str, Path], held_out: list[str],
           device: str) -> dict[str, dict[str, float]]:
    idx = np.array([i for i, t in enumerate(bank.tracks) if t.artist in held_out])
    meta = [(bank.tracks[i].artist, bank.tracks[i].song) for i in idx]
    out = {}
    for system, path in exports.items():
        if not path.is_file():
            continue
        mix = track_vectors(path, bank, idx, "mixture", device)
        voc = track_vectors(path, bank, idx, "vocals", device)
        out[system] = {"mix_mix_map": mean_ap(mix, mix, meta, meta),
                       "voc_mix_map": mean_ap(voc, mix, meta, meta),
                       "voc_voc_map": mean_ap(voc, voc, meta, meta)}
        print(system, out[system], flush=True)
    return out


def gpu_util_logger(path: Path) -> subprocess.Popen:
    return subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used",
                             "--format=csv,noheader,nounits", "-lms", "500"],
                            stdout=path.open("w"), stderr=subprocess.DEVNULL)


def main(args: argparse.Namespace) -> None:
    t0 = time.time()
    out, work = args.out, Path("/tmp/cvsm-gpu")
    cache = work / "cache"
    work.mkdir(parents=True, exist_ok=True)
    util = gpu_util_logger(work / "gpu_util.csv") if args.device == "cuda" else None
    tracks = read_manifest(args.data)
    build_bank(tracks, cache, workers=16, quiet=True)
    print(f"cache built at {time.time() - t0:.0f} s", flush=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_throughput import measure

    bench = {"embed": embed_throughput(args.device)}
    if args.bench_steps:
        bench["train_eager"] = measure(args.data, "cvsm_a", args.device, args.batch,
                                       args.bench_steps, 5, cache)
    (work / "bench.json").write_text(json.dumps(bench, indent=2))
    print(json.dumps(bench), flush=True)
    remaining = args.budget - (time.time() - t0)
    cv_s = 0.55 * remaining - 25
    held = args.held_out.split(",")
    procs = {s: spawn(s, args, work / f"cv_{s}", cache, cv_s, out / f"cv_{s}.pt",
                      args.held_out) for s in SYSTEMS}
    for p in procs.values():
        p.wait()
    print(f"fold done at {time.time() - t0:.0f} s", flush=True)
    bank = build_bank(tracks, cache, quiet=True)
    scores = select(bank, {s: out / f"cv_{s}.pt" for s in SYSTEMS}, held, args.device)
    best = max(scores, key=lambda s: scores[s]["mix_mix_map"]) if scores else "cvsm_ah"
    (work / "selection.json").write_text(json.dumps({"scores": scores, "best": best}, indent=2))
    final_s = args.budget - (time.time() - t0) - 30
    spawn(best, args, work / f"final_{best}", cache, final_s, out / "final.pt", "").wait()
    if util is not None:
        util.terminate()
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for p in work.iterdir():
            if p.name != "cache":
                tar.add(p, arcname=p.name, filter=lambda m: None if m.name.endswith(".pt")
                        else m)
    print(f"done at {time.time() - t0:.0f} s; best system {best}", flush=True)


def embed_throughput(device: str) -> dict[str, float]:
    """Batched embedding on the GPU (fp32 eager): 1 s chunks per second."""
    from model.encoder import CVSMModel
    from model.inference.embedder import Embedder

    model = CVSMModel()
    emb = Embedder.from_state(ckpt_io.backbone_state(model.state_dict()), {}, device=device,
                              batch_size=512)
    n = 4096 if device == "cuda" else 64
    chunks = (np.random.default_rng(0).standard_normal((n, 16000)) * 0.003).astype(np.float32)
    emb.embed_chunks(chunks[: n // 4])
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    emb.embed_chunks(chunks)
    sync()
    seconds = time.perf_counter() - start
    return {"chunks_per_s": n / seconds, "x_realtime": n / seconds, "batch": 512}


def probe(args: argparse.Namespace) -> None:
    """Short check of learning dynamics: W init of the paper vs a small one, 3 runs at once."""
    t0 = time.time()
    out, work = args.out, Path("/tmp/cvsm-gpu")
    cache = work / "cache"
    work.mkdir(parents=True, exist_ok=True)
    util = gpu_util_logger(work / "gpu_util.csv")
    build_bank(read_manifest(args.data), cache, workers=16, quiet=True)
    print(f"cache built at {time.time() - t0:.0f} s", flush=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_throughput import measure

    bench = {"train_eager": measure(args.data, "cvsm_a", "cuda", 128, 30, 5, cache)}
    print(json.dumps(bench), flush=True)
    runs = {"a_paper": ("cvsm_a", "0.05"), "a_small": ("cvsm_a", "0.002"),
            "art_paper": ("cvsm_art", "0.05"), "art_small": ("cvsm_art", "0.002")}
    procs = [spawn(system, args, work / name, cache, args.budget, out / f"{name}.pt",
                   args.held_out, ("--bilinear-std", std, "--eval-interval", "50"))
             for name, (system, std) in runs.items()]
    for p in procs:
        p.wait()
    util.terminate()
    for name in runs:
        rows = [json.loads(x) for x in (work / name / "metrics.jsonl").read_text().splitlines()]
        print(name, [(r["step"], round(r["val_acc"], 3)) for r in rows if r["split"] == "val"])
        print(name, "train loss", [round(r["loss"], 2) for r in rows if r["split"] == "train"][::5])
    util_rows = (work / "gpu_util.csv").read_text().splitlines()
    print("gpu util samples", util_rows[-20:])
    for p in out.glob("*.pt"):
        p.unlink()
    print(f"done at {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("main")
    pr = sub.add_parser("probe")
    pr.add_argument("--data", type=Path, required=True)
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--budget", type=float, default=60)
    pr.add_argument("--held-out", default=",".join(HELD_OUT))
    pr.add_argument("--device", default="cuda")
    pr.add_argument("--batch", type=int, default=128)
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--budget", type=float, default=480)
    m.add_argument("--held-out", default=",".join(HELD_OUT))
    m.add_argument("--bench-steps", type=int, default=40)
    for p in (m, c := sub.add_parser("child")):
        p.add_argument("--device", default="cuda")
        p.add_argument("--batch", type=int, default=128)
    for name in ("--config", "--data", "--out", "--cache", "--export"):
        c.add_argument(name, type=Path, required=True)
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--val-artists", default="")
    c.add_argument("--eval-interval", type=int, default=100)
    c.add_argument("--bilinear-std", type=float)
    a = ap.parse_args()
    {"main": main, "child": child, "probe": probe}[a.mode](a)
    os._exit(0)
