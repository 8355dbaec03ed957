"""Subcommands of `cvsm`; each module exposes `register(subparsers)` and sets `handler`."""

from app.commands import index_catalog, merge, migrate, serve, synth

COMMANDS = [synth, index_catalog, merge, migrate, serve]
