"""`cvsm` command line: one subcommand per module in app/commands (each has `register`).

The command modules import torch, FAISS, SQLAlchemy and FastAPI inside their `run`, so
`cvsm --help` and `cvsm --version` answer without loading them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.commands import COMMANDS
from model.version import VERSION


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cvsm",
        description="CVSM vocal similarity search: train the encoder, index a catalog, serve "
        "query-by-example search.",
    )
    parser.add_argument("--version", action="version", version=f"cvsm {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    describe(sub)
    return parser


def describe(sub: argparse._SubParsersAction) -> None:
    """Every subcommand's --help opens with a description (its one-line help where it has no
    longer one) and shows each option's default."""
    from app.commands.options import SettingsHelpFormatter

    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        command.description = command.description or (helps.get(name) or "").capitalize()
        command.formatter_class = SettingsHelpFormatter


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except Exception as exc:
        if not _is_user_mistake(exc):
            raise
        print(f"cvsm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _is_user_mistake(exc: Exception) -> bool:
    """Mistakes the user fixes (one line, exit 2) rather than bugs (a traceback)."""
    from app.commands.checks import UserError

    if isinstance(exc, UserError):
        return True
    manifest = sys.modules.get("model.data.manifest")  # loaded if a manifest was read
    return manifest is not None and isinstance(exc, manifest.ManifestError)


if __name__ == "__main__":
    sys.exit(main())
