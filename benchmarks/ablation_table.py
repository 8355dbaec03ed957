"""Retrieval of many systems over several folds as one markdown table (issue 17).

Each fold folder is what one `cvsm evaluate` call wrote (one subfolder per system, usually with
--retrieval-only); rows are systems, columns P@1 / mAP of mix->mix, vocals->mix and
vocals->vocals per fold, then their unweighted mean over the MIR-1K dev folds (A and B): each
fold tests different singers, so the mean scores every MIR-1K dev singer once.

Usage: python benchmarks/ablation_table.py --fold A=runs/evalA --fold B=runs/evalB \\
           --fold ravdess=runs/evalR [--mean A,B] [--split]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fold_table, when imported by tests
from fold_table import DIRECTIONS, display, load_systems, retrieval_cell  # noqa: E402


def mean_retrieval(results: list[dict]) -> dict:
    """Per direction, the mean P@1 and mAP over folds (only directions every fold has)."""
    common = [d for d in DIRECTIONS if all(d in r["retrieval"] for r in results)]
    return {d: {k: sum(r["retrieval"][d][k] for r in results) / len(results)
                for k in ("p_at_1", "map")} for d in common}


NOTE = "P@1 / mAP; catalog = the fold's tracks of other songs, relevant = same singer."


def table(folds: dict[str, dict[str, dict]], mean_over: list[str],
          show_folds: bool = True) -> list[str]:
    """Markdown lines: one row per system seen in any fold, '-' where a fold lacks it; the
    mean columns need the system in every averaged fold."""
    systems = list(dict.fromkeys(name for rows in folds.values() for name in rows))
    shown = list(folds) if show_folds else []
    averaged = [f for f in mean_over if f in folds]
    mean = len(averaged) > 1
    groups = shown + ([f"mean {'+'.join(averaged)}"] if mean else [])
    head = ["system"] + [f"{g} {d}" for g in groups for d in DIRECTIONS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in systems:
        cells = []
        for fold in shown:
            ret = folds[fold][name]["retrieval"] if name in folds[fold] else None
            cells += [retrieval_cell(ret, d) for d in DIRECTIONS]
        if mean:
            have = [folds[f][name] for f in averaged if name in folds[f]]
            ret = mean_retrieval(have) if len(have) == len(averaged) else None
            cells += [retrieval_cell(ret, d) for d in DIRECTIONS]
        lines.append(f"| {display(name)} | " + " | ".join(cells) + " |")
    return lines


def split_tables(folds: dict[str, dict[str, dict]], mean_over: list[str]) -> list[str]:
    """The same numbers as one narrower table per fold, then one of the mean."""
    lines: list[str] = []
    for fold, rows in folds.items():
        lines += [f"### Fold {fold}", "", *table({fold: rows}, []), ""]
    averaged = [f for f in mean_over if f in folds]
    if len(averaged) > 1:
        lines += [f"### Mean of folds {', '.join(averaged)}", "",
                  *table({f: folds[f] for f in averaged}, averaged, show_folds=False), ""]
    return lines


def parse_folds(specs: list[str]) -> dict[str, Path]:
    """['A=runs/evalA', ...] -> {'A': Path('runs/evalA'), ...}, in command-line order."""
    folds: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--fold wants NAME=FOLDER, got {spec!r}")
        folds[name] = Path(folder)
    return folds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fold", action="append", required=True, metavar="NAME=FOLDER",
                   help="a fold's `cvsm evaluate` output folder (repeat per fold)")
    p.add_argument("--mean", default="A,B", help="folds to average (default A,B)")
    p.add_argument("--split", action="store_true", help="one table per fold instead of one")
    args = p.parse_args(argv)
    folds = {name: load_systems(folder) for name, folder in parse_folds(args.fold).items()}
    mean_over = [f.strip() for f in args.mean.split(",") if f.strip()]
    body = split_tables(folds, mean_over) if args.split else table(folds, mean_over)
    print("\n".join([NOTE, "", *body]))


if __name__ == "__main__":
    main()
