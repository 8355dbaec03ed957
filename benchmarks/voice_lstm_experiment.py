"""The experiment that led to the voice-LSTM student (docs/results.md, "The voice-LSTM student"):
fine-tune a copy of the teacher (Resemblyzer's LSTM) so that a mixture window gives the frozen
teacher's view of the clean vocals of the same window, outside `cvsm train`, to see in one
session whether the idea pays before building it in.

    OMP_NUM_THREADS=1 python benchmarks/voice_lstm_experiment.py --fold A \
        --data MIR1K_DEV/clips.csv --data VOICES_EXTRA/clips.csv --minutes 30 --out runs/lstm/A.pt
    # --crop 16000: the student hears the middle 1 s of each 1.6 s window (the product's chunks)
    python benchmarks/voice_lstm_eval.py --fold A --data MIR1K_DEV/clips.csv \
        --ckpt runs/lstm/A.pt --out runs/lstm/evalA.json [--mode chunks]

Each step: 32 windows of 1.6 s with singing, their clean vocals through the frozen teacher (the
target) and their mixtures through the student (real mixture, or the vocals over another
track's accompaniment at a gain of 0.6-1.5), plus 16 clean windows, all at -30 dBFS +-6 dB;
loss = mean(1 - cos) on mixtures + 0.5 x the same on clean windows; Adam 1e-4. The fold's test
singers and RAVDESS actors 9-16 never train.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.audio.voice_mel import voice_mel_spectrogram
from model.data.manifest import read_manifests
from model.evaluation.data import read_audio
from model.evaluation.folds import RAVDESS_TEST, fold_singers
from model.training.teacher import WINDOW

DBFS = -30.0


def level(x: torch.Tensor, dbfs: float) -> torch.Tensor:
    """Each row at `dbfs` RMS: the teacher's input is linear power, so level matters."""
    rms = x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-5)
    return x * (10 ** (dbfs / 20) / rms)


def load(paths: list[str], exclude: set[str]
         ) -> tuple[list[np.ndarray], list[np.ndarray | None], list[np.ndarray]]:
    """Every training row's vocals (padded to a window), its accompaniment if it has one, and
    the pool of accompaniments long enough to lay under another row's vocals."""
    tracks = [t for t in read_manifests(paths) if t.artist not in exclude and t.vocals]
    vocals, accs = [], []
    for t in tqdm(tracks, desc="load"):
        v = read_audio(t.vocals)
        if len(v) < WINDOW:
            v = np.pad(v, (0, WINDOW - len(v)))
        vocals.append(v)
        accs.append(read_audio(t.accompaniment)[:len(v)] if t.accompaniment else None)
    pool = [a for a in accs if a is not None and len(a) >= WINDOW]
    return vocals, accs, pool


def window(v: np.ndarray, rng: np.random.Generator, tries: int = 8) -> int:
    best, best_e = 0, -1.0
    for _ in range(tries):
        s = int(rng.integers(0, len(v) - WINDOW + 1))
        e = float(np.mean(v[s:s + WINDOW] ** 2))
        if e > best_e:
            best, best_e = s, e
        if e > 1e-4:
            break
    return best


def batch(vocals, accs, pool, weights, rng, n_mix: int, n_voc: int):
    idx = rng.choice(len(vocals), size=n_mix + n_voc, p=weights)
    clean, mixed = [], []
    for k, i in enumerate(idx):
        v = vocals[i]
        s = window(v, rng)
        cv = v[s:s + WINDOW]
        clean.append(cv)
        if k >= n_mix:
            mixed.append(cv)
            continue
        own = accs[i]
        if own is not None and rng.random() < 0.5 and len(own) >= s + WINDOW:
            a = own[s:s + WINDOW]
            g = 1.0
        else:
            a_src = pool[int(rng.integers(len(pool)))]
            o = int(rng.integers(0, len(a_src) - WINDOW + 1))
            a = a_src[o:o + WINDOW]
            g = float(rng.uniform(0.6, 1.5))
        mixed.append(cv + g * a)
    clean_t = torch.from_numpy(np.stack(clean).astype(np.float32))
    mixed_t = torch.from_numpy(np.stack(mixed).astype(np.float32))
    gains = torch.from_numpy(rng.uniform(-6, 6, size=(len(mixed), 1)).astype(np.float32))
    return level(clean_t, DBFS), level(mixed_t, DBFS) * 10 ** (gains / 20)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fold", default="A")
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--mix", type=int, default=32)
    p.add_argument("--voc", type=int, default=16)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=WINDOW)
    args = p.parse_args()
    from resemblyzer import VoiceEncoder

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    exclude = set(fold_singers(args.fold)[1]) | set(RAVDESS_TEST) if args.fold != "none" else set()
    vocals, accs, pool = load(args.data, exclude)
    lengths = np.array([len(v) for v in vocals], dtype=np.float64)
    weights = lengths / lengths.sum()
    teacher = VoiceEncoder(device="cpu", verbose=False).eval()
    student = VoiceEncoder(device="cpu", verbose=False).train()
    for q in teacher.parameters():
        q.requires_grad_(False)
    mel = voice_mel_spectrogram()
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    log, start, step = [], time.time(), 0
    bar = tqdm(desc=f"fold {args.fold}", unit="step")
    while time.time() - start < args.minutes * 60:
        clean, mixed = batch(vocals, accs, pool, weights, rng, args.mix, args.voc)
        with torch.no_grad():
            target = teacher(mel(clean).transpose(1, 2))
        c0 = (WINDOW - args.crop) // 2
        out = student(mel(mixed[:, c0:c0 + args.crop]).transpose(1, 2))
        cos = torch.nn.functional.cosine_similarity(out, target)
        loss_mix = (1 - cos[:args.mix]).mean()
        loss_voc = (1 - cos[args.mix:]).mean()
        loss = loss_mix + 0.5 * loss_voc
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 3.0)
        opt.step()
        step += 1
        log.append((step, time.time() - start, float(loss_mix), float(loss_voc)))
        if step % 20 == 0:
            recent = np.array(log[-20:])
            bar.set_postfix(mix=f"{recent[:, 2].mean():.4f}", voc=f"{recent[:, 3].mean():.4f}")
        bar.update()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": student.state_dict(), "step": step, "fold": args.fold}, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(log))
    print(f"done {step} steps; last-100 mix {np.mean([r[2] for r in log[-100:]]):.4f} "
          f"voc {np.mean([r[3] for r in log[-100:]]):.4f}")


if __name__ == "__main__":
    main()
