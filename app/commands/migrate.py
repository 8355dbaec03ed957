"""`cvsm migrate`: bring a database's schema to the latest Alembic revision (idempotent)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="upgrade the SQL schema (SQLite or PostgreSQL) to head")
    p.add_argument("--db", help="SQLAlchemy URL (default: SQLite file in the data dir)")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--revision", default="head")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from index.db import migrate, sqlite_url

    url = args.db or sqlite_url(args.data_dir)
    migrate(url, args.revision)
    print(f"database at revision {args.revision}: {url.split('@')[-1]}")
    return 0
