"""`cvsm whiten`: fit PCA whitening on the voices a model heard (model/whitening.py) and write
a model file that serves the whitened embedding."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands.checks import UserError, manifest_path
from app.commands.options import SettingsHelpFormatter, add_device_option, settings_from

if TYPE_CHECKING:
    from model.wccn import WCCN, Choice
    from model.whitening import Reference


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("whiten", help="fit PCA whitening on the model's training voices",
                       description="Embed the sung chunks of the singers a checkpoint was "
                       "trained on (mixtures and vocals), fit PCA whitening to --dims, and "
                       "write an inference file that serves the whitened embedding. Singers "
                       "the model never heard are never used, so fold figures stay honest.",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, metavar="PT",
                   help="training checkpoint or export that records its train_artists")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="manifest CSV(s) holding the training singers; repeat for several")
    p.add_argument("--dims", type=int, default=128,
                   help="dimensions kept (default 128: half the voice-LSTM's 256)")
    p.add_argument("--power", type=float, default=0.25,
                   help="each direction is divided by variance**power: 0.5 full whitening, "
                        "0 a centred projection (default 0.25)")
    p.add_argument("--wccn", default="auto", type=_wccn_option, metavar="auto|off|POWER:SHRINK",
                   help="within-singer covariance normalisation after the PCA (model/wccn.py): "
                        "'auto' (default) chooses among plain PCA and a small grid by fitting "
                        "on half of the training singers and scoring the other half, over four "
                        "random halvings (plain PCA if a half has under 3 singers); 'off' is "
                        "plain PCA; e.g. '0.25:0.5' forces one setting")
    p.add_argument("--out", type=Path, required=True, help="inference file to write (.pt)")
    add_device_option(p)
    p.set_defaults(handler=run)


def _wccn_option(text: str) -> str | WCCN:
    """argparse type: 'auto', 'off' or a WCCN setting POWER:SHRINK."""
    from model.wccn import WCCN

    if text in ("auto", "off"):
        return text
    try:
        power, shrink = (float(x) for x in text.split(":"))
        return WCCN(power, shrink)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected auto, off or POWER:SHRINK ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model import checkpoint as ckpt_io
    from model.evaluation.data import load_corpus
    from model.evaluation.systems import checkpoint_system
    from model.wccn import fit_backend
    from model.whitening import reference_set, with_whitening

    start = time.perf_counter()
    ckpt = ckpt_io.load(args.checkpoint)
    heard = list(ckpt.get("train_artists") or [])
    if not heard:
        raise UserError(f"{args.checkpoint} records no train_artists: whitening is fitted only "
                        "on singers the model heard")
    corpus = []
    for manifest in args.data:
        manifest_path(manifest)
        try:
            corpus += load_corpus(manifest, heard,
                                  progress=lambda xs: tqdm(xs, desc="decode", unit="track"))
        except ValueError:
            print(f"{manifest}: none of the model's training singers; skipped")
    if not corpus:
        raise UserError("no track of the model's training singers in --data")
    system = checkpoint_system(args.checkpoint, settings_from(args).device, embedding="backbone")
    ref = reference_set(corpus, system, progress=lambda xs: tqdm(xs, desc="embed", leave=False))
    try:
        wccn, choice = _pick_wccn(args, ref)
        head = fit_backend(ref.chunks, ref.singers, args.dims, args.power, wccn)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    singers = sorted(set(ref.singers))
    about = {"dims": args.dims, "power": args.power, "singers": len(singers),
             "tracks": len(corpus), "chunks": int(len(ref.chunks)),
             "wccn": None if wccn is None else {"power": wccn.power, "shrink": wccn.shrink},
             "data": [str(m) for m in args.data], "base": str(args.checkpoint)}
    if choice is not None:
        about["wccn_choice"] = {"scores": choice.scores, "halves": choice.halves}
    fp = ckpt_io.export_inference(with_whitening(ckpt, head), args.out,
                                  extra={"train_artists": heard, "whitening": about})
    print(f"whitened {args.checkpoint} to {args.dims} dims (power {args.power}, "
          f"{wccn or 'no wccn'}) on "
          f"{len(ref.chunks)} sung chunks of {len(corpus)} tracks by {len(singers)} singers: "
          f"model {fp}, wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


def _pick_wccn(args: argparse.Namespace, ref: Reference) -> tuple[WCCN | None, Choice | None]:
    """The WCCN setting to fit: as given, or chosen on held-out training singers (printed)."""
    from model.wccn import SPLITS, choose_wccn

    if args.wccn == "off":
        return None, None
    if args.wccn != "auto":
        return args.wccn, None
    choice = choose_wccn(ref, args.dims, args.power)
    if not choice.scores:
        print(f"WCCN not weighed: {len(set(ref.singers))} training singers "
              f"({len(ref.chunks)} chunks) are too few to hold half of them out; plain PCA")
        return None, choice
    print(f"WCCN choice, fitted on one half of the training singers and scored on the other "
          f"({len(choice.halves[0])}/{len(choice.halves[1])} singers, both ways, mean of "
          f"{SPLITS} random halvings); mAP mix->mix / vocals->mix / vocals->vocals, mean:")
    for name, s in choice.scores.items():
        print(f"  {name:16s} {s['mix->mix']:.4f} / {s['vocals->mix']:.4f} / "
              f"{s['vocals->vocals']:.4f}  {s['mean']:.4f}")
    print(f"chosen: {choice.best or 'pca only'}")
    return choice.best, choice
