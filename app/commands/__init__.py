"""Subcommands of `cvsm`; each module exposes `register(subparsers)` and sets `handler`."""

from app.commands import evaluate, index_catalog, merge, migrate, serve, synth, train

COMMANDS = [synth, train, evaluate, index_catalog, merge, migrate, serve]
