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
    whiten,
)

COMMANDS = [synth, train, whiten, evaluate, calibrate, fold_data, index_catalog, merge, migrate,
            serve, study]
