"""`cvsm merge`: gather sharded `cvsm index` runs into one database and one FAISS index.

The target's data dir and database, and the model (`--checkpoint`, `--vocal-gate`), come from
`Settings` like `cvsm index`'s (flag > CVSM_* > .env > default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.options import (
    SettingsHelpFormatter,
    add_catalog_options,
    add_setting,
    on_off,
    settings_from,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge sharded index runs and build the FAISS index",
                       formatter_class=SettingsHelpFormatter)
    add_catalog_options(p, db_help="target SQLAlchemy URL; empty: the SQLite file cvsm.db in "
                        "the data dir, where the merged FAISS index goes too")
    p.add_argument("--from", dest="sources", action="append", default=[], metavar="URL",
                   help="a shard's database to copy rows from (repeat the flag: --from A "
                   "--from B); omit when the shards wrote into the target database itself")
    add_setting(p, "--checkpoint", field="checkpoint", type=Path, metavar="PT",
                help="model whose vectors to index", default_text="the only model in the rows")
    add_setting(p, "--index-factory", field="index_factory", metavar="FACTORY")
    add_setting(p, "--vocal-gate", field="vocal_gate", action=argparse.BooleanOptionalAction,
                help="with a checkpoint: the shards were indexed with the vocal gate")
    add_setting(p, "--separation", field="separation", type=on_off, metavar="on|off",
                help="with a checkpoint: the shards were indexed with vocal separation")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index.merge import merge

    settings = settings_from(args)
    fingerprint = None
    if settings.checkpoint:
        from model.inference.embedder import Embedder
        fingerprint = Embedder.from_checkpoint(settings.checkpoint, "cpu",
                                               gate=settings.vocal_gate,
                                               separation=settings.separation).fingerprint
    summary = merge(settings.db_url, settings.data_dir, args.sources, fingerprint,
                    settings.index_factory)
    print(summary.line())
    return 0
