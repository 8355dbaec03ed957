"""Training configuration: one TOML file per system in configs/, paper-faithful defaults."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from model.pairs import SYSTEMS, PairConfig


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
    steps: int = 10_000
    seed: int = 0
    eval_interval: int = 250
    eval_batches: int = 8
    log_interval: int = 10
    #: Held-out tracks for validation: whole singers when val_artists is set (singer-disjoint),
    #: else this share of tracks.
    val_artists: list[str] = field(default_factory=list)
    val_fraction: float = 0.1
    amp: bool = True             # bf16 autocast on CUDA
    compile: bool = False        # torch.compile the model (CUDA)
    channels_last: bool = True   # CUDA convolution layout

    @property
    def system(self) -> str:
        return self.pairs.system

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
        return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML config: top-level training keys plus a [pairs] table."""
    with Path(path).open("rb") as fh:
        return TrainConfig.from_dict(tomllib.load(fh))
