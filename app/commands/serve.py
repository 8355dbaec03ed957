"""`cvsm serve`: migrate, load the model, open the catalog, seed a demo if empty, serve.

Settings come from CVSM_* variables / .env (app/settings.py); the flags here override them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from app.bootstrap import prepare
from app.main import create_app
from app.settings import Settings
from model.inference.backends import BACKENDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the search service (REST API + web page)")
    p.add_argument("--host", help="listening address (CVSM_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listening port (CVSM_PORT, default 8000)")
    p.add_argument("--data-dir", type=Path, help="catalog folder (CVSM_DATA_DIR, default data)")
    p.add_argument("--checkpoint", type=Path, help="model file (default: the bundled model)")
    p.add_argument("--no-demo", action="store_true", help="do not seed an empty catalog")
    p.add_argument("--backend", choices=BACKENDS,
                   help="inference runtime (CVSM_BACKEND, default auto: ONNX Runtime on CPU)")
    p.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, then the flags that were given."""
    overrides = {"host": args.host, "port": args.port, "data_dir": args.data_dir,
                 "checkpoint": args.checkpoint, "seed_demo": False if args.no_demo else None,
                 "backend": getattr(args, "backend", None)}
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, embedder = prepare(settings_from(args))
    app = create_app(settings, embedder=embedder)
    print(f"CVSM search: http://{settings.host}:{settings.port}/  (API docs at /docs)",
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=10)
    return 0
