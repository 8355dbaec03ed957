"""Training configuration: one TOML file per system in configs/, paper-faithful defaults."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from model.audio.signal import SAMPLE_RATE
from model.data.voice_shift import check_factors
from model.encoder import DEFAULT_ARCH, VOICE_ARCH, check_arch
from model.training.pairs import CROP, SYSTEMS, PairConfig

#: `init` value that starts a voice-lstm from the teacher's pretrained weights.
TEACHER_INIT = "teacher"
#: More context per side than this would make each 1 s vector mostly about its neighbours.
MAX_CONTEXT_S = 2.0


@dataclass
class TrainConfig:
    """Everything a run needs besides data paths; saved inside every checkpoint."""

    name: str = "cvsm_a"
    pairs: PairConfig = field(default_factory=PairConfig)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    bilinear_std: float = 0.002  # init of W; the paper (Keras random_normal) used 0.05
    warmup_steps: int = 0
    #: nanoGPT's schedule after warm-up: cosine decay from `lr` to `min_lr` over this many steps,
    #: then `min_lr`; 0 keeps `lr` constant (the paper's). Independent of `--steps`.
    lr_decay_steps: int = 0
    min_lr: float = 0.0
    #: Largest global gradient norm a step may apply (nanoGPT's `grad_clip`; 0 = no clipping).
    #: A voice-lstm seed diverged late without it (docs/results.md, "Context windows").
    grad_clip: float = 0.0
    steps: int = 10_000
    seed: int = 0
    eval_interval: int = 250
    eval_batches: int = 8
    log_interval: int = 10
    #: Held-out tracks for validation: whole singers when val_artists is set (singer-disjoint),
    #: else this share of tracks.
    val_artists: list[str] = field(default_factory=list)
    val_fraction: float = 0.1
    #: Loss = contrastive_weight * contrastive + kd_weight * distillation toward a frozen speaker
    #: encoder's embedding of the clean vocals (model/training/teacher.py); kd_weight 0 = no
    #: teacher.
    contrastive_weight: float = 1.0
    kd_weight: float = 0.0
    #: Seconds of vocals around a crop's centre whose teacher windows make its target.
    kd_context_s: float = 3.0
    #: Speed factors of extra, shifted copies of every voice (model/data/voice_shift.py);
    #: only systems that lay isolated voices over accompaniment can use them.
    voice_shifts: list[float] = field(default_factory=list)
    #: Front end + backbone (model/encoder.py ARCHS): "efficientnet-b0" (the paper's) or
    #: "voice-lstm" (a speaker encoder's network, model/voice_encoder.py).
    arch: str = DEFAULT_ARCH
    #: Weights to start from (fine-tuning): a training checkpoint or an inference export, or
    #: "teacher" (voice-lstm only: the distillation teacher's own pretrained weights).
    init: str = ""
    #: Seconds of neighbouring audio the backbone hears on each side of every 1 s chunk, in
    #: training crops and at inference alike (model/audio/signal.py `chunk`): a speaker encoder
    #: judges a voice better from 2 s than from 1 s (docs/training.md, "Context").
    context_s: float = 0.0
    #: voice-lstm only: consecutive 10 ms mel frames averaged into one LSTM step. The LSTM's
    #: time is one step per frame, so 2 halves it (docs/training.md, "Pooled frames").
    frame_pool: int = 1
    #: What model.pt serves: "backbone" (its output: 1280-d EfficientNet, 256-d voice-lstm) or
    #: "kd" (the 256-d distillation head).
    embedding: str = "backbone"
    amp: bool = True             # bf16 autocast on CUDA
    compile: bool = False        # torch.compile the model (CUDA)
    channels_last: bool = True   # CUDA convolution layout

    @property
    def system(self) -> str:
        return self.pairs.system

    @property
    def context(self) -> int:
        """`context_s` in samples: what the model and the crops are built with."""
        return int(round(self.context_s * SAMPLE_RATE))

    @property
    def crop(self) -> int:
        """Samples of one training crop: a 1 s chunk and its context on both sides."""
        return CROP + 2 * self.context

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based): linear warm-up, then the cosine decay."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if not self.lr_decay_steps:
            return self.lr
        if step >= self.lr_decay_steps:
            return self.min_lr
        ratio = (step - self.warmup_steps) / (self.lr_decay_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)

    @property
    def distils(self) -> bool:
        return self.kd_weight > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        pairs = PairConfig(**data.pop("pairs", {}))
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        cfg = cls(pairs=pairs, **data)
        if cfg.system not in SYSTEMS:
            raise ValueError(f"unknown system {cfg.system!r}; choose from {sorted(SYSTEMS)}")
        if cfg.embedding not in ("backbone", "kd") or (cfg.embedding == "kd"
                                                        and not cfg.distils):
            raise ValueError("embedding is 'backbone' or, for a distilling run, 'kd'")
        check_arch(cfg.arch)
        if cfg.init == TEACHER_INIT and cfg.arch != VOICE_ARCH:
            raise ValueError(f"init = {TEACHER_INIT!r} needs arch = {VOICE_ARCH!r} (the "
                             f"teacher's network), not {cfg.arch!r}")
        check_factors(cfg.voice_shifts)
        if cfg.lr_decay_steps and not (cfg.lr_decay_steps > cfg.warmup_steps
                                       and 0 <= cfg.min_lr <= cfg.lr):
            raise ValueError("lr_decay_steps must exceed warmup_steps, with 0 <= min_lr <= lr")
        if cfg.grad_clip < 0:
            raise ValueError("grad_clip must be >= 0 (0 turns clipping off)")
        if not 0 <= cfg.context_s <= MAX_CONTEXT_S:
            raise ValueError(f"context_s must be within [0, {MAX_CONTEXT_S}] s")
        if cfg.frame_pool < 1 or (cfg.frame_pool > 1 and cfg.arch != VOICE_ARCH):
            raise ValueError(f"frame_pool must be >= 1, and above 1 only with arch = "
                             f"{VOICE_ARCH!r}")
        if cfg.voice_shifts and not SYSTEMS[cfg.system].mixes:
            raise ValueError(f"voice_shifts need a system that builds artificial mixtures, "
                             f"not {cfg.system}")
        if cfg.contrastive_weight < 0 or cfg.kd_weight < 0 or (
                cfg.contrastive_weight == 0 and cfg.kd_weight == 0):
            raise ValueError("contrastive_weight and kd_weight must be >= 0, not both 0")
        return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML config: top-level training keys plus a [pairs] table."""
    with Path(path).open("rb") as fh:
        return TrainConfig.from_dict(tomllib.load(fh))
