"""`cvsm study`: create a listening study on the catalog, read its votes (issue 16).

    cvsm study create --name N --models default kd [...] --queries CSV|DIR [--per-query K]
    cvsm study export --name N [--out votes.csv]   # every vote, one CSV row each
    cvsm study results --name N [--plot FILE.png]  # win rates with 95% intervals, ranking

The database and data dir come from `Settings` (`--db` > CVSM_DATABASE_URL > .env > SQLite in
the data dir). A model is `default` (the catalog's own), a name of CVSM_EXTRA_MODELS, or
NAME=PT; each must have indexed the catalog (`cvsm index [--extra-model]`). Queries: a CSV with
a `track_id` column (catalog tracks) and/or a `path` column (outside clips), or a folder of clips.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands.checks import UserError
from app.commands.options import (
    SettingsHelpFormatter,
    add_catalog_options,
    add_model_options,
    settings_from,
)

if TYPE_CHECKING:
    from app.settings import Settings
    from model.inference.embedder import Embedder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="export a listening study's votes or print its results",
                       formatter_class=SettingsHelpFormatter)
    p.add_argument("action", choices=("create", "export", "results"),
                   help="create: a study of the catalog; export: every vote as CSV; results: "
                   "win rates and ranking")
    p.add_argument("--name", required=True, help="the study's name")
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="create: the models compared: default, a CVSM_EXTRA_MODELS name, or "
                   "NAME=PT")
    p.add_argument("--queries", type=Path, help="create: CSV (track_id and/or path column) or "
                   "a folder of audio clips")
    p.add_argument("--per-query", type=int, default=3,
                   help="create: candidates per model and query, paired rank by rank")
    p.add_argument("--out", type=Path, help="export: CSV file to write (default: stdout)")
    p.add_argument("--plot", type=Path, help="results: also draw them into this PNG")
    add_catalog_options(p)
    add_model_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index import db, studies

    if args.action == "create":
        return create(args)
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


def create(args: argparse.Namespace) -> int:
    """Plan the trials from each model's search results and store the study."""
    from index.catalog import DEFAULT_MODEL, Catalog
    from index.studies import StudyExistsError, create_study
    from index.study_plan import QueryError, clip_query, plan_trials, track_query
    from model.audio.decode import AudioError

    settings = settings_from(args)
    paths = _model_files(args.models or [], settings)
    queries = _query_refs(args.queries)
    if args.per_query < 1:
        raise UserError("--per-query must be at least 1")
    embedders = {name: _load(path, settings) for name, path in paths.items()}
    catalog = Catalog(settings.db_url, settings.data_dir, embedders[DEFAULT_MODEL],
                      settings.index_factory)
    try:
        for name, embedder in embedders.items():
            if name != DEFAULT_MODEL:
                try:
                    catalog.attach(name, embedder)
                except ValueError as exc:  # a bad name, or one model under two names
                    raise UserError(str(exc)) from None
        catalog.open()
        names = list(paths)
        try:
            built = [track_query(catalog, ref, names) if kind == "track"
                     else clip_query(catalog, Path(ref), names, settings.max_track_seconds)
                     for kind, ref in queries]
        except (QueryError, OSError, AudioError) as exc:
            raise UserError(str(exc)) from None
        plan = plan_trials(catalog, names, built, args.per_query)
        if not plan.trials:
            raise UserError("the models return the same candidates for every query: nothing "
                            "to compare")
        create_study(catalog.repository.sessions, args.name, names, plan.trials)
    except StudyExistsError as exc:
        raise UserError(f"{exc}: choose another --name") from None
    finally:
        catalog.close()
    print(f"study {args.name}: {len(plan.trials)} trials from {len(built)} queries, models "
          f"{', '.join(names)}; {plan.identical} same-candidate pairs left out"
          + (f", {plan.short} queries with fewer than {args.per_query} candidates"
             if plan.short else "")
          + f"\nparticipants: http://{settings.host}:{settings.port}/study/{args.name}")
    return 0


def _model_files(specs: list[str], settings: Settings) -> dict[str, Path | None]:
    """Model name -> file (None: the default model's, from the settings)."""
    from index.catalog import DEFAULT_MODEL

    if len(set(specs)) < 2:
        raise UserError("--models needs at least two different models, e.g. default kd")
    if DEFAULT_MODEL not in specs:
        raise UserError("--models must include `default`, the model the catalog was indexed "
                        "with (the others are served beside it)")
    out: dict[str, Path | None] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if name == DEFAULT_MODEL:
            out[name] = settings.checkpoint
        elif sep:
            out[name] = Path(path)
        elif name in settings.extra_models:
            out[name] = settings.extra_models[name]
        else:
            raise UserError(f"model {name!r} is not configured: give NAME=PT or set "
                            "CVSM_EXTRA_MODELS")
        if out[name] is not None and not out[name].is_file():
            raise UserError(f"model file {out[name]} (model {name!r}) not found")
    return out


def _load(path: Path | None, settings: Settings) -> Embedder:
    from app.commands.checks import model_file
    from model.inference.embedder import Embedder

    path = path or model_file(settings)
    return Embedder.from_checkpoint(path, settings.device, backend=settings.backend,
                                    gate=settings.vocal_gate, separation=settings.separation)


def _query_refs(path: Path | None) -> list[tuple[str, str]]:
    """("track", id) and ("upload", file) pairs from a CSV or a folder of clips."""
    from model.audio.decode import AUDIO_EXTENSIONS

    if path is None or not path.exists():
        raise UserError("--queries: give a CSV (track_id and/or path column) or a folder of "
                        "audio clips")
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        refs = [("upload", str(p)) for p in found]
    else:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        refs = [("track", r["track_id"].strip()) if (r.get("track_id") or "").strip()
                else ("upload", str(path.parent / r["path"].strip()))
                for r in rows if (r.get("track_id") or r.get("path") or "").strip()]
    if not refs:
        raise UserError(f"--queries {path}: no track_id/path rows or audio files found")
    return refs


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
