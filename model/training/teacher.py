"""Distillation targets: a frozen speaker encoder's view of the clean vocals, computed once.

The teacher (Resemblyzer's pretrained GE2E `VoiceEncoder`, 256-d, trained on thousands of
speakers) embeds the bank's *vocal* stem on a fixed grid: a 1.6 s window (its own partial
length) centred every 0.5 s. A training crop's target is the mean of the sung windows of its
track whose centres lie within `context_s` around the crop's centre, so a step costs a gather,
never a teacher forward. The grid is cached inside the bank folder under a name built from the
teacher's version (package version, weights hash, window and hop), so a changed catalog (new
bank fingerprint) or a changed teacher gets new targets and everything else reuses them.

Resemblyzer is the `train` extra: needed to build targets, never to serve.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from model.audio.activity import FRAME
from model.audio.signal import SAMPLE_RATE
from model.audio.voice_mel import TARGET_DBFS, voice_mel_spectrogram
from model.files import publish_dir
from model.training.bank import Bank

#: Window the teacher embeds (its partial utterance: 160 frames of 10 ms) and the grid step.
WINDOW = 25_600
HOP = SAMPLE_RATE // 2
#: A grid window counts when at least this share of it is sung (the pair sampler's rule).
MIN_SUNG = 0.25
BATCH = 256


class Teacher(Protocol):
    """What distillation needs of a teacher: a version string and unit embeddings of windows."""

    version: str
    dim: int

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """(n, WINDOW) float32 16 kHz -> (n, dim) L2-normalised float32."""
        ...


class TeacherUnavailable(RuntimeError):
    """The teacher's package is missing (install the `train` extra)."""


def _weights_file(purpose: str) -> Path:
    """The teacher's pretrained weights inside the `resemblyzer` wheel."""
    try:
        import resemblyzer
    except ImportError as exc:  # the package, or pkg_resources (setuptools<81)
        raise TeacherUnavailable(
            f"{purpose} needs resemblyzer ({exc}); pip install -e '.[train]'") from exc
    return Path(resemblyzer.__file__).parent / "pretrained.pt"


def pretrained_backbone_state() -> dict[str, torch.Tensor]:
    """The teacher's pretrained network as `backbone.*` weights of a voice-lstm CVSM model
    (model/voice_encoder.py keeps the package's parameter names): the start of a student that
    already knows thousands of voices. Read from the wheel, at training time only."""
    weights = _weights_file("init = 'teacher'")
    state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    return {f"backbone.{k}": v for k, v in state.items() if k.startswith(("lstm.", "linear."))}


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class ResemblyzerTeacher:
    """Resemblyzer's VoiceEncoder, frozen, on CPU (its LSTM is small; the grid is built once)."""

    dim = 256

    def __init__(self) -> None:
        weights = _weights_file("distillation")
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device="cpu", verbose=False).eval()
        package = importlib.metadata.version("resemblyzer")
        self.version = f"resemblyzer-{package}-{_file_digest(weights)}-w{WINDOW}-h{HOP}"
        self.mel = voice_mel_spectrogram()

    @torch.inference_mode()
    def embed(self, windows: np.ndarray) -> np.ndarray:
        # Quiet stretches of real vocals give denormal mel powers, which ran the LSTM ~6x
        # slower; flushing them changes nothing audible (they are below 1e-38).
        torch.set_flush_denormal(True)
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        x = x * (10 ** (TARGET_DBFS / 20) / rms.clamp_min(1e-6))
        frames = self.mel(x).transpose(1, 2)[:, : WINDOW // 160]
        return self.encoder(frames).numpy()


@dataclass
class TeacherTargets:
    """The teacher's grid over a bank: unit embeddings, which windows count, whose track."""

    embeddings: np.ndarray  # (grid, dim) float16
    valid: np.ndarray       # (grid,) bool: sung window of a track with vocals
    track: np.ndarray       # (grid,) int32 track index of the window's centre, -1 in gaps
    version: str
    folder: Path

    def lookup(self, at: np.ndarray, tracks: np.ndarray, context_s: float,
               length: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
        """Targets of crops [at, at + length) of `tracks`: the normalised mean of their track's
        valid windows centred within context_s/2 of the crop centre; (targets, has_target)."""
        half = context_s * SAMPLE_RATE / 2
        centre = at + length / 2
        first = np.ceil((centre - half) / HOP).astype(np.int64)
        last = np.floor((centre + half) / HOP).astype(np.int64)
        width = int(np.floor(2 * half / HOP)) + 1
        idx = first[:, None] + np.arange(width)[None, :]
        inside = (idx >= 0) & (idx < len(self.valid)) & (idx <= last[:, None])
        idx = np.clip(idx, 0, len(self.valid) - 1)
        use = inside & self.valid[idx] & (self.track[idx] == tracks[:, None])
        summed = (self.embeddings[idx].astype(np.float32) * use[..., None]).sum(axis=1)
        norm = np.linalg.norm(summed, axis=1, keepdims=True)
        return summed / np.maximum(norm, 1e-12), use.any(axis=1)


def _grid_windows(bank: Bank, track: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid points whose centre lies in `track`, and their windows cut from the vocals
    (clipped to the track, zero-padded), so no window hears a neighbouring track."""
    start, n = int(bank.starts[track]), int(bank.lengths[track])
    grid = np.arange(-(-start // HOP), (start + n - 1) // HOP + 1, dtype=np.int64)
    vocals = bank.stems["vocals"]
    windows = np.zeros((len(grid), WINDOW), dtype=np.float32)
    for row, g in enumerate(grid):
        a, b = max(start, g * HOP - WINDOW // 2), min(start + n, g * HOP + WINDOW // 2)
        offset = a - (g * HOP - WINDOW // 2)
        windows[row, offset:offset + b - a] = vocals[a:b]
    return grid, windows


def _sung(bank: Bank, grid: np.ndarray, track: int) -> np.ndarray:
    start, n = int(bank.starts[track]), int(bank.lengths[track])
    a = np.maximum(start, grid * HOP - WINDOW // 2)
    b = np.minimum(start + n, grid * HOP + WINDOW // 2)
    return bank.active_fraction(a, np.maximum(b - a, FRAME)) >= MIN_SUNG


def _embed_pending(teacher: Teacher, pending: list[tuple[np.ndarray, np.ndarray]],
                   out: np.ndarray) -> None:
    """Embed the queued windows in one teacher batch into their grid rows; empties the queue."""
    grid = np.concatenate([g for g, _ in pending])
    out[grid] = teacher.embed(np.concatenate([w for _, w in pending])).astype(np.float16)
    pending.clear()


def _write(bank: Bank, teacher: Teacher, folder: Path, quiet: bool) -> None:
    total = int(bank.starts[-1] + bank.lengths[-1]) // HOP + 1
    emb = np.lib.format.open_memmap(folder / "embeddings.npy", "w+", np.float16,
                                    (total, teacher.dim))
    valid = np.zeros(total, dtype=bool)
    owner = np.full(total, -1, dtype=np.int32)
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    for t in tqdm(range(len(bank.tracks)), desc="teacher targets", unit="track", disable=quiet):
        if bank.tracks[t].vocals is None:
            continue  # mixture-only row: no clean vocals to distil from
        grid, windows = _grid_windows(bank, t)
        owner[grid], valid[grid] = t, _sung(bank, grid, t)
        pending.append((grid, windows))
        if sum(len(g) for g, _ in pending) >= BATCH:
            _embed_pending(teacher, pending, emb)
    if pending:
        _embed_pending(teacher, pending, emb)
    emb.flush()
    np.save(folder / "valid.npy", valid)
    np.save(folder / "track.npy", owner)
    (folder / "done.json").write_text(json.dumps({"version": teacher.version, "grid": total}))


def _folder_name(version: str) -> str:
    return "teacher-" + hashlib.sha256(version.encode()).hexdigest()[:16]


def build_targets(bank: Bank, teacher: Teacher, quiet: bool = False) -> TeacherTargets:
    """The teacher grid of `bank`, built on first use and reused while bank and teacher stay
    the same (the folder lives in the bank's own fingerprinted folder)."""
    folder = bank.root / _folder_name(teacher.version)
    if not (folder / "done.json").is_file():
        tmp = bank.root / f".{folder.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _write(bank, teacher, tmp, quiet)
        publish_dir(tmp, folder)
    return open_targets(folder)


def open_targets(folder: Path) -> TeacherTargets:
    meta = json.loads((folder / "done.json").read_text())
    return TeacherTargets(np.load(folder / "embeddings.npy", mmap_mode="r"),
                          np.load(folder / "valid.npy"), np.load(folder / "track.npy"),
                          meta["version"], folder)
