"""Engines, sessions and migrations for SQLite (default, a file under the data dir) or PostgreSQL.

Library code takes explicit URLs; only app/ reads the environment. `migrate` runs Alembic
programmatically from the installed `migrations` package, so no alembic.ini is needed at runtime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

import index.changes  # noqa: F401 - registers the hook that records every track change
import migrations

DB_FILE = "cvsm.db"


def sqlite_url(data_dir: Path) -> str:
    """The default database: `cvsm.db` in the data dir."""
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILE}"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL + a busy timeout so the job and the service can share it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic config pointing at the packaged migrations (same on SQLite and PostgreSQL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrations_dir() -> Path:
    """The installed `migrations` package folder (first real path: editable installs may
    present it as a namespace package)."""
    return next(Path(p) for p in migrations.__path__ if Path(p, "env.py").is_file())


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (creates the SQLite file's folder)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def vector_id_for(external_id: str) -> int:
    """Stable positive 63-bit FAISS id of a track id (equal on every shard and machine)."""
    return int.from_bytes(hashlib.sha256(external_id.encode()).digest()[:8], "big") >> 1
