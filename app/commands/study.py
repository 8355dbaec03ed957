"""`cvsm study`: read a listening study's votes from the catalog database (issue 16).

    cvsm study export --name N [--out votes.csv]   # every vote, one CSV row each
    cvsm study results --name N [--plot FILE.png]  # win rates with 95% intervals, ranking

The database comes from `Settings` (`--db` > CVSM_DATABASE_URL > .env > SQLite in the data dir).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from app.commands.checks import UserError
from app.commands.options import SettingsHelpFormatter, add_catalog_options, settings_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="export a listening study's votes or print its results",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("action", choices=("export", "results"),
                   help="export: every vote as CSV; results: win rates and ranking")
    p.add_argument("--name", required=True, help="the study's name")
    p.add_argument("--out", type=Path, help="export: CSV file to write (default: stdout)")
    p.add_argument("--plot", type=Path, help="results: also draw them into this PNG")
    add_catalog_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index import db, studies

    engine = db.make_engine(settings_from(args).db_url)
    try:
        sessions = db.session_factory(engine)
        if args.action == "export":
            return _export(studies.export_rows(sessions, args.name), args.out)
        votes = studies.votes(sessions, args.name)
        _results(votes, studies.models_of(sessions, args.name))
        if args.plot:
            _plot(votes, args.name, args.plot)
        return 0
    except studies.UnknownStudyError as exc:
        raise UserError(f"{exc}; studies live in the catalog database (--db)") from None
    finally:
        engine.dispose()


def _export(rows: list[dict[str, str]], out: Path | None) -> int:
    from index.studies import EXPORT_COLUMNS

    handle = out.open("w", newline="") if out else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out:
            handle.close()
    if out:
        print(f"wrote {len(rows)} votes to {out}", file=sys.stderr)
    return 0


def _results(votes: list, models: list[str]) -> None:
    from index.study_results import bradley_terry, pair_results

    print(f"{len(votes)} votes, {len({v.participant for v in votes})} participants")
    for p in pair_results(votes):
        rate = "-" if p.win_rate is None else f"{p.win_rate:.3f} [{p.low:.3f}, {p.high:.3f}]"
        print(f"{p.first} vs {p.second}: {p.first_wins}-{p.second_wins}, {p.ties} ties, "
              f"{p.participants} participants; {p.first} wins {rate}")
    if len(models) > 2 and votes:
        ranking = ", ".join(f"{m} {s:.2f}" for m, s in bradley_terry(votes).items())
        print(f"Bradley-Terry: {ranking}")


def _plot(votes: list, name: str, path: Path) -> None:
    """Per model pair the first model's win rate with its 95% interval (0.5 = no preference),
    and the Bradley-Terry strengths when there are more than two models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from index.study_results import bradley_terry, pair_results

    pairs = [p for p in pair_results(votes) if p.win_rate is not None]
    strengths = bradley_terry(votes)
    fig, axes = plt.subplots(1, 2 if len(strengths) > 2 else 1, squeeze=False,
                             figsize=(11 if len(strengths) > 2 else 6, 0.6 * len(pairs) + 2))
    ax = axes[0][0]
    for y, p in enumerate(pairs):
        ax.errorbar(p.win_rate, y, xerr=[[p.win_rate - p.low], [p.high - p.win_rate]],
                    fmt="o", capsize=4, color="C0")
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(pairs)), [f"{p.first} vs {p.second}\n({p.first_wins}-"
                                      f"{p.second_wins}, {p.ties} ties)" for p in pairs])
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate of the first model, 95% interval (ties excluded)")
    if len(strengths) > 2:
        axes[0][1].barh(list(strengths)[::-1], list(strengths.values())[::-1], color="C1")
        axes[0][1].set_xlabel("Bradley-Terry strength (geometric mean 1)")
    fig.suptitle(f"study {name}: {len(votes)} votes, "
                 f"{len({v.participant for v in votes})} participants")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
