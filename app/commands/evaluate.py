"""`cvsm evaluate`: the paper's protocol (probes, similarity, retrieval) on frozen features of
one or more checkpoints and baselines, sharing one decoded corpus."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from app.commands.checks import UserError
from app.commands.options import (
    LazyChoices,
    SettingsHelpFormatter,
    add_device_option,
    on_off,
    settings_from,
)
from model.evaluation.folds import FOLDS, fold_singers  # stdlib only; the rest loads in run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score checkpoints/baselines with the paper's protocol",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, nargs="+", default=[], metavar="PT",
                   help="training checkpoints or inference exports (several share one data load)")
    p.add_argument("--embedding", nargs="+", default=["auto"],
                   choices=["auto", "backbone", "kd", "whiten"],
                   help="which output of each checkpoint to score (auto: what it serves); "
                        "several = each checkpoint once per choice it has")
    p.add_argument("--baseline", nargs="+", default=[], metavar="NAME",
                   choices=LazyChoices("model.evaluation.baselines", "BASELINES"),
                   help="reference systems scored by the same harness: %(choices)s")
    p.add_argument("--separation", nargs="+", type=_separation, default=["off"],
                   metavar="on|off|voice",
                   help="separate the voice first, as `cvsm serve --separation on` does "
                        "(mixture and voice vectors joined; `voice`: the voice's alone); "
                        "`off on` scores each checkpoint both ways (default: off)")
    p.add_argument("--songs", nargs="*", type=float, default=None, metavar="SHARE",
                   help="also score whole songs assembled from the clips of each song in "
                        "order, with this share of instrumental time (no value: 0 0.3 0.5); "
                        "the stems' perfect singing mask is reported beside")
    p.add_argument("--data", type=Path, required=True, help="manifest CSV (docs/manifest.md)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_device_option(p)
    p.add_argument("--probe-device", default="cpu",
                   help="linear probes' device (cpu: batch-64 steps are launch-bound on a GPU)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for the seeds' probes (default: half the CPU cores)")
    p.add_argument("--seeds", type=int, default=None, help="probe/episode seeds (5; quick: 2)")
    p.add_argument("--episodes", type=int, default=None, help="similarity episodes per seed")
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs (tests)")
    p.add_argument("--artists", default="", help="comma-separated singers to evaluate on")
    p.add_argument("--fold", choices=sorted(FOLDS), default=None,
                   help="evaluate on a named fold's test singers (model/evaluation/folds.py); "
                        "instead of --artists")
    p.add_argument("--retrieval-only", action="store_true",
                   help="only the retrieval suite (P@1/mAP): no probes, curves or similarity "
                        "episodes, which take minutes per system")
    p.add_argument("--exclude-artists", default="",
                   help="comma-separated singers to leave out (added to a checkpoint's "
                        "config train_artists)")
    p.set_defaults(handler=run)


def _separation(text: str) -> str:
    """`on`, `off` (as everywhere) or `voice` (separated, the voice's vector alone)."""
    if text.strip().lower() == "voice":
        return "voice"
    return "on" if on_off(text) else "off"


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def chosen_artists(args: argparse.Namespace) -> list[str]:
    """The singers to evaluate on: --fold's test singers, or --artists (not both)."""
    if args.fold and args.artists:
        raise ValueError("give --fold or --artists, not both")
    return list(fold_singers(args.fold)[0]) if args.fold else _names(args.artists)


def _systems(args: argparse.Namespace, device: str) -> list[tuple[str, object]]:
    """(kind, system) in command-line order; a missing optional baseline is reported, skipped."""
    from model.evaluation.baselines import BaselineUnavailable, baseline_system
    from model.evaluation.systems import checkpoint_system

    systems: list[tuple[str, object]] = []
    for path in args.checkpoint:
        for embedding, separation in ((e, s) for e in args.embedding for s in args.separation):
            try:
                systems.append(("checkpoint", checkpoint_system(
                    path, device, embedding=embedding, separation=separation != "off",
                    separation_input="voice" if separation == "voice" else "both")))
            except ValueError as exc:
                if len(args.embedding) == 1:
                    raise
                print(f"skipped {path} ({embedding}): {exc}", file=sys.stderr)
    for name in args.baseline:
        try:
            systems.append(("baseline", baseline_system(name, device=device)))
        except BaselineUnavailable as exc:
            print(f"skipping baseline {name}: {exc}", file=sys.stderr)
    return systems


def _score_songs(subset: list, system: object, shares: list[float]) -> dict:
    """Whole-song retrieval at each instrumental share (model/evaluation/songs.py; none
    given: its SHARES)."""
    from model.evaluation.songs import SHARES, SongScorer, assemble, score_songs

    shares = shares or list(SHARES)
    scorer = SongScorer(system.embed_songs)
    out = {}
    for share in shares:
        start = time.perf_counter()
        out[f"{share:g}"] = score_songs(assemble(subset, share), scorer)
        served = out[f"{share:g}"]["served"]["mix->mix"]["map"]
        print(f"  songs, {share:.0%} instrumental: mix->mix mAP {served:.3f} "
              f"({time.perf_counter() - start:.1f} s)")
    return out


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}-{k}"
    taken.add(candidate)
    return candidate


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.evaluation.data import load_corpus, without_artists
    from model.evaluation.report import write_report, write_summary, write_vectors
    from model.evaluation.run import EvalConfig, score_system
    from model.evaluation.systems import train_artists

    if not args.checkpoint and not args.baseline:
        raise UserError("nothing to score: give --checkpoint and/or --baseline")
    try:
        artists = chosen_artists(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    workers = args.workers or max(1, (os.cpu_count() or 2) // 2)
    config = EvalConfig.make(args.quick, args.seeds, args.episodes, args.probe_device,
                             min(workers, args.seeds or 5))
    try:
        systems = _systems(args, settings_from(args).device)
    except ValueError as exc:  # e.g. --embedding kd for a checkpoint without that head
        raise UserError(str(exc)) from None
    if not systems:
        return 1
    start = time.perf_counter()
    corpus = load_corpus(args.data, artists, _names(args.exclude_artists),
                         progress=lambda xs: tqdm(xs, desc="decode", unit="track"))
    print(f"decoded {len(corpus)} tracks in {time.perf_counter() - start:.1f} s")
    all_results, taken = [], set()
    for kind, system in systems:
        name = _unique_name(system.name, taken)
        held_out = train_artists(system)
        subset = without_artists(corpus, held_out)
        results, features = score_system(
            subset, system, config, progress=lambda xs, n=name: tqdm(xs, desc=n, leave=False),
            only_retrieval=args.retrieval_only)
        results.update(system={"name": name, "kind": kind, **getattr(system, "info", {})},
                       data=str(args.data), fold=args.fold, excluded_train_artists=held_out)
        results["config"]["quick"] = args.quick
        if args.songs is not None and hasattr(system, "embed_songs"):
            results["songs"] = _score_songs(subset, system, args.songs)
        out = args.out if len(systems) == 1 else args.out / name
        write_report(out, results, {k: f.tracks for k, f in features.items()},
                     [t.artist for t in subset], [t.gender for t in subset])
        write_vectors(out, {k: f.tracks for k, f in features.items()},
                      [t.track_id for t in subset], [t.artist for t in subset],
                      [t.song for t in subset])
        print(f"{name}: wrote {out / 'report.md'} ({results['timing_s']})")
        all_results.append(results)
    if len(systems) > 1:
        print(f"wrote {write_summary(args.out, all_results)}")
    return 0

