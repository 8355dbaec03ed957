"""Run under torchrun by tests/model/test_ddp.py: a tiny DDP training whose every rank saves its
final parameters and step, so the test can compare the processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from model.training.config import TrainConfig
from model.training.loop import Trainer, dist_from_env
from model.training.pairs import PairConfig


def main() -> None:
    manifest, out, cache, steps, max_seconds = sys.argv[1:6]
    cfg = TrainConfig(name="ddp", pairs=PairConfig(system="cvsm_a"), batch_size=4,
                      steps=int(steps), eval_interval=2, eval_batches=1, log_interval=1,
                      val_fraction=0.25)
    trainer = Trainer(cfg, Path(manifest), Path(out), device="cpu", cache_dir=Path(cache),
                      workers=1, dist=dist_from_env(dict(os.environ)), quiet=True)
    try:
        trainer.run(max_seconds=float(max_seconds) if float(max_seconds) > 0 else None)
        torch.save({"step": trainer.step, "model": trainer.model.state_dict()},
                   Path(out) / f"rank{trainer.dist.rank}.pt")
    finally:
        trainer.close()


if __name__ == "__main__":
    main()
