"""`cvsm migrate`: bring a database's schema to the latest Alembic revision (idempotent).

The database comes from `Settings` (`--db` > CVSM_DATABASE_URL > .env > SQLite in the data dir).
"""

from __future__ import annotations

import argparse

from app.commands.options import SettingsHelpFormatter, add_catalog_options, settings_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="upgrade the SQL schema (SQLite or PostgreSQL) to head",
                       formatter_class=SettingsHelpFormatter)
    add_catalog_options(p)
    p.add_argument("--revision", default="head", help="Alembic revision (default: head)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index.db import migrate

    url = settings_from(args).db_url
    migrate(url, args.revision)
    print(f"database at revision {args.revision}: {url.split('@')[-1]}")
    return 0
