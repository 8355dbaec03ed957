"""Subcommands of `cvsm`; each module exposes `register(subparsers)` and sets `handler`."""

from app.commands import serve, synth

COMMANDS = [synth, serve]
