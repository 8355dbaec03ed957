"""`cvsm whiten`: fit PCA whitening on the voices a model heard (model/whitening.py) and write
a model file that serves the whitened embedding."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.commands.checks import UserError, manifest_path
from app.commands.options import SettingsHelpFormatter, add_device_option, settings_from


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
    p.add_argument("--out", type=Path, required=True, help="inference file to write (.pt)")
    add_device_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model import checkpoint as ckpt_io
    from model.evaluation.data import load_corpus
    from model.evaluation.systems import checkpoint_system
    from model.whitening import fit_whitening, reference_chunks, with_whitening

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
    chunks = reference_chunks(corpus, system,
                              progress=lambda xs: tqdm(xs, desc="embed", leave=False))
    try:
        head = fit_whitening(chunks, args.dims, args.power)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    singers = sorted({t.artist for t in corpus})
    about = {"dims": args.dims, "power": args.power, "singers": len(singers),
             "tracks": len(corpus), "chunks": int(len(chunks)),
             "data": [str(m) for m in args.data], "base": str(args.checkpoint)}
    fp = ckpt_io.export_inference(with_whitening(ckpt, head), args.out,
                                  extra={"train_artists": heard, "whitening": about})
    print(f"whitened {args.checkpoint} to {args.dims} dims (power {args.power}) on "
          f"{len(chunks)} sung chunks of {len(corpus)} tracks by {len(singers)} singers: "
          f"model {fp}, wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0
