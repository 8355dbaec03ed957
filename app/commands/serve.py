"""`cvsm serve`: migrate, load the model, open the catalog, seed a demo if empty, serve.

Settings come from CVSM_* variables / .env (app/settings.py); the flags here override them,
the shared ones (data dir, database, model, device, backend, vocal gate) exactly as in
`cvsm index`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.checks import UserError, model_file
from app.commands.options import (
    SettingsHelpFormatter,
    add_catalog_options,
    add_model_options,
    add_setting,
    settings_from,
)

__all__ = ["register", "run", "settings_from"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the search service (REST API + web page)",
                       formatter_class=SettingsHelpFormatter)
    add_setting(p, "--host", field="host", help="listening address")
    add_setting(p, "--port", field="port", type=int, help="listening port")
    add_catalog_options(p)
    add_model_options(p)
    p.add_argument("--model", action="append", default=[], metavar="NAME=PT",
                   help="serve another model beside the default one (repeatable; index it "
                   "first with `cvsm index --extra-model --checkpoint PT`); adds to "
                   "CVSM_EXTRA_MODELS")
    add_setting(p, "--no-demo", field="seed_demo", action="store_false",
                help="do not seed an empty catalog with the synthetic demo",
                default_text="seed it")
    p.set_defaults(handler=run)


def parse_models(specs: list[str]) -> dict[str, Path]:
    """["b=runs/b/model.pt", ...] -> {"b": Path(...)}; a malformed one is the user's mistake."""
    from index.catalog import DEFAULT_MODEL, MODEL_NAME

    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--model {spec!r}: write NAME=PATH, e.g. kd=runs/kd/model.pt")
        if name == DEFAULT_MODEL or not MODEL_NAME.fullmatch(name):
            raise UserError(f"--model {spec!r}: a name of 1-64 letters, digits, '_', '.', '-', "
                            f"other than {DEFAULT_MODEL!r}")
        out[name] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn  # the service's stack loads only when the command runs

    from app.bootstrap import prepare
    from app.main import create_app
    from index.catalog import ModelMismatchError

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    settings = settings.model_copy(update={"extra_models": {**settings.extra_models,
                                                            **parse_models(args.model)}})
    if settings.checkpoint is not None:
        model_file(settings)  # a missing file is the user's mistake, not a crash
    for name, path in settings.extra_models.items():
        if not path.is_file():
            raise UserError(f"model file {path} (model {name!r}) not found")
    try:
        settings, embedder = prepare(settings)
    except ModelMismatchError as exc:  # an index of another model (e.g. the earlier default)
        raise UserError(str(exc)) from None
    app = create_app(settings, embedder=embedder)
    print(f"CVSM search: http://{settings.host}:{settings.port}/  (API docs at /docs)",
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=10)
    return 0
