"""Subcommands of `cvsm`; each module exposes `register(subparsers)` and sets `handler`."""

from app.commands import (
    calibrate,
    evaluate,
    fold_data,
    index_catalog,
    merge,
    migrate,
    serve,
    study,
    synth,
    train,
)

COMMANDS = [synth, train, evaluate, calibrate, fold_data, index_catalog, merge, migrate, serve,
            study]
