"""`cvsm train`: contrastive training of one of the six systems from a config file."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from app.commands.checks import UserError
from app.commands.options import SettingsHelpFormatter, add_device_option, settings_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the encoder (any of the six systems)",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("--config", type=Path, required=True, help="configs/<system>.toml")
    p.add_argument("--data", type=Path, required=True, action="append",
                   help="manifest CSV; repeat to train on several (e.g. MIR-1K + isolated voices)")
    p.add_argument("--init", type=Path,
                   help="start from these weights (checkpoint or export): fine-tuning; 'teacher' "
                        "starts a voice-lstm config from the speaker encoder's own weights")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics)")
    add_device_option(p)
    p.add_argument("--steps", type=int, help="train until this step (default: the config's)")
    p.add_argument("--batch-size", type=int, help="override the config's batch size")
    p.add_argument("--val-artists", help="comma-separated singers held out for validation")
    p.add_argument("--voice-shifts",
                   help="comma-separated speed factors of extra shifted copies of every voice "
                        "(e.g. 0.88,0.94,1.06,1.12), or 'none'; default: the config's")
    p.add_argument("--seed", type=int,
                   help="override the config's random seed (repeated runs of one config)")
    p.add_argument("--eval-interval", type=int, help="validate/checkpoint every N steps")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "cvsm",
                   help="where decoded stems are cached (reused across runs)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="decoding processes for the cache")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.data.manifest import ManifestError  # torch loads only when the command runs
    from model.training.config import TrainConfig, load_config
    from model.training.loop import Trainer, dist_from_env
    from model.training.teacher import TeacherUnavailable

    cfg = load_config(args.config)
    if args.batch_size:
        cfg.batch_size = args.batch_size
    if args.seed is not None:
        cfg.seed = args.seed
    if args.eval_interval:
        cfg.eval_interval = args.eval_interval
    if args.init:
        cfg.init = str(args.init)
    if args.val_artists:
        cfg.val_artists = [a.strip() for a in args.val_artists.split(",") if a.strip()]
    if args.voice_shifts:
        cfg.voice_shifts = _factors(args.voice_shifts)
    try:
        cfg = TrainConfig.from_dict(cfg.to_dict())  # validates the overrides like the file
        trainer = Trainer(cfg, args.data, args.out, device=settings_from(args).device,
                          cache_dir=args.cache_dir, resume=args.resume, workers=args.workers,
                          dist=dist_from_env(dict(os.environ)))
    except (ManifestError, ValueError, TeacherUnavailable) as exc:
        raise UserError(str(exc)) from None  # one line on stderr, exit 2 (app/cli.py)
    max_s = args.max_minutes * 60 if args.max_minutes else None
    try:
        summary = trainer.run(args.steps, max_seconds=max_s)
    finally:
        trainer.close()
    if trainer.dist.main:
        print(json.dumps(summary, indent=2))
    return 0


def _factors(text: str) -> list[float]:
    if text.strip().lower() == "none":
        return []
    try:
        return [float(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise UserError(f"--voice-shifts takes numbers like 0.94,1.06, not {text!r}") from None
