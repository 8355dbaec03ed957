"""`cvsm calibrate`: fit the served model's cosine -> P(same singer) curve on held-out singers
(model/evaluation/calibration.py) and write it, with its reliability diagram, beside the model."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from app.commands.checks import UserError, manifest_path, model_file
from app.commands.options import (
    SettingsHelpFormatter,
    add_device_option,
    add_setting,
    on_off,
    settings_from,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="learn P(same singer) from cosines on unseen singers",
                       description="Embed a manifest of singers the model never trained on, "
                       "as the service embeds uploads, and fit an isotonic cosine -> "
                       "probability curve; the service shows it next to each cosine.",
                       formatter_class=SettingsHelpFormatter)
    add_setting(p, "--checkpoint", field="checkpoint", type=Path, metavar="PT")
    p.add_argument("--data", type=Path, required=True,
                   help="manifest CSV of held-out singers (e.g. `cvsm fold-data ravdess`)")
    p.add_argument("--fold", default=None,
                   help="keep only this fold's test singers (A, B or ravdess; default: all)")
    p.add_argument("--out", type=Path, required=True,
                   help="calibration JSON to write (the service reads it from CVSM_CALIBRATION)")
    p.add_argument("--plot", type=Path, default=None,
                   help="reliability diagram PNG (default: the JSON's name with .png)")
    p.add_argument("--fit-pairs", choices=("all", "same-gender"), default="all",
                   help="pairs the curve is fitted on: all, or only two singers of one gender "
                        "(needs the manifest's gender column); pairs of one gender are scored "
                        "whenever every track's gender is known")
    add_setting(p, "--separation", field="separation", type=on_off, metavar="on|off",
                help="calibrate the separated vectors (as `cvsm serve --separation on` "
                     "serves them): another scale, so another curve")
    add_device_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.evaluation.calibration import calibrate, plot_reliability
    from model.evaluation.data import load_corpus
    from model.evaluation.folds import fold_singers
    from model.inference.embedder import Embedder

    settings = settings_from(args)
    manifest_path(args.data)
    start = time.perf_counter()
    artists = fold_singers(args.fold)[0] if args.fold else None
    corpus = load_corpus(args.data, artists,
                         progress=lambda xs: tqdm(xs, desc="decode", unit="track"))
    embedder = Embedder.from_checkpoint(model_file(settings), device=settings.device,
                                        separation=settings.separation)
    vocals = [t.vocals for t in corpus] if all(t.vocals is not None for t in corpus) else None
    genders = [t.gender for t in corpus] if all(t.gender for t in corpus) else None
    if args.fit_pairs == "same-gender" and genders is None:
        raise UserError(f"--fit-pairs same-gender needs a gender for every track in {args.data}")
    try:
        curve, table = calibrate(embedder, [t.mixture for t in corpus], vocals,
                                 [t.artist for t in corpus],
                                 [t.song or t.track_id for t in corpus],
                                 source=f"{args.data}"
                                 + (f" (fold {args.fold})" if args.fold else ""),
                                 genders=genders, fit_pairs=args.fit_pairs)
    except ValueError as exc:
        raise UserError(f"cannot calibrate on {args.data}: {exc}") from exc
    curve.save(args.out)
    plot = args.plot or args.out.with_suffix(".png")
    plot_reliability(table, curve, plot)
    args.out.with_suffix(".reliability.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"calibrated model {curve.fingerprint} on {curve.info['tracks']} tracks of "
          f"{len(curve.info['singers'])} singers, {curve.info['pairs']} pairs: cross-fitted "
          f"ECE {table['ece']:.3f}"
          + (f" (pairs of one gender: {table['same_gender']['ece']:.3f})"
             if "same_gender" in table else "") + f"; wrote {args.out} and {plot} in "
          f"{time.perf_counter() - start:.0f} s")
    return 0
