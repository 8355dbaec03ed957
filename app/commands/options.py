"""Options that several `cvsm` commands share, all backed by `app.settings.Settings`.

Such a flag keeps the Settings field name as its dest and defaults to "not given"
(argparse.SUPPRESS); `settings_from(args)` builds `Settings` from the flags that were given, so
every command and the service resolve an option the same way: command-line flag > `CVSM_*`
environment variable > `.env` file > the field's default. Help texts come from the field
descriptions, looked up only when a command's `--help` is printed, and `LazyChoices` imports a
list of choices only when it is checked: `cvsm --help` loads neither pydantic nor torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import Settings

#: Parser default listing the Settings fields a command's flags may set.
FIELDS = "setting_fields"
#: Attributes of a Settings-backed argparse action: its field, help text and shown default.
_FIELD, _HELP, _DEFAULT_TEXT = "setting_field", "setting_help", "setting_default_text"


class LazyChoices:
    """`choices` for argparse read from `module.name` on first use (give a `metavar`, or
    argparse lists them while the parser is built)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def _values(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.name))

    def __contains__(self, value: object) -> bool:
        return value in self._values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())


BACKEND_CHOICES = LazyChoices("model.inference.backends", "BACKENDS")


class SettingsHelpFormatter(argparse.HelpFormatter):
    """Help of a Settings-backed flag: its text (or the field description), the variable that
    also sets it and the field's default; other options show their default as argparse does."""

    def _get_help_string(self, action: argparse.Action) -> str:
        field = getattr(action, _FIELD, None)
        if field is None:
            text = super()._get_help_string(action) or ""
            hidden = action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS
            shown = not hidden and "default" not in text and action.option_strings
            return f"{text} (default: %(default)s)" if shown else text
        return setting_help(field, getattr(action, _HELP), getattr(action, _DEFAULT_TEXT))


def setting_help(field: str, text: str | None = None, default_text: str | None = None) -> str:
    """'<text> (CVSM_<FIELD>; default: <default>)', ready for argparse's %-formatting."""
    from app.settings import Settings

    info = Settings.model_fields[field]
    text = text or (info.description or "").replace("%", "%%")
    default = info.get_default(call_default_factory=True)
    if default_text is None and default not in (None, ""):
        default_text = str(default).lower() if isinstance(default, bool) else str(default)
    shown = f"; default: {default_text}" if default_text else ""
    return f"{text} (CVSM_{field.upper()}{shown.replace('%', '%%')})"


def add_setting(parser: argparse.ArgumentParser, *flags: str, field: str,
                help: str | None = None, default_text: str | None = None,
                **kwargs: Any) -> argparse.Action:
    """A flag for Settings field `field`: absent from the namespace unless given. `help`
    replaces the field description (argparse %-formatting applies); `default_text` the
    default shown."""
    action = parser.add_argument(*flags, dest=field, default=argparse.SUPPRESS,
                                 help=field, **kwargs)
    for name, value in ((_FIELD, field), (_HELP, help), (_DEFAULT_TEXT, default_text)):
        setattr(action, name, value)
    parser.set_defaults(**{FIELDS: (*(parser.get_default(FIELDS) or ()), field)})
    return action


def add_catalog_options(parser: argparse.ArgumentParser, db_help: str | None = None) -> None:
    """`--data-dir` and `--db`: where the catalog lives (FAISS files, SQL database)."""
    add_setting(parser, "--data-dir", field="data_dir", type=Path, metavar="DIR")
    add_setting(parser, "--db", field="database_url", metavar="URL", help=db_help)


def add_model_options(parser: argparse.ArgumentParser, checkpoint_help: str | None = None,
                      checkpoint_default: str | None = None) -> None:
    """`--checkpoint`, `--device`, `--backend`, `--vocal-gate`, `--separation`: the model and
    how it runs (index and service must agree on the model, the gate and the separation: they
    change the vectors)."""
    add_setting(parser, "--checkpoint", field="checkpoint", type=Path, metavar="PT",
                help=checkpoint_help, default_text=checkpoint_default)
    add_device_option(parser)
    add_setting(parser, "--backend", field="backend", choices=BACKEND_CHOICES, metavar="NAME")
    add_setting(parser, "--vocal-gate", field="vocal_gate",
                action=argparse.BooleanOptionalAction)
    add_setting(parser, "--separation", field="separation", type=on_off, metavar="on|off")


def on_off(text: str) -> bool:
    """`on` / `off` (also true/false, yes/no, 1/0) as a bool; argparse's one-line error
    otherwise."""
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {text!r}")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, "--device", field="device", metavar="DEVICE")


def settings_from(args: argparse.Namespace, **given: Any) -> Settings:
    """Settings from the flags the user gave (and `given`), else CVSM_*, .env, defaults. An
    invalid value exits with status 2 and pydantic's message, as a bad flag does."""
    from pydantic import ValidationError

    from app.settings import Settings

    flags = {f: getattr(args, f) for f in getattr(args, FIELDS, ()) if hasattr(args, f)}
    try:
        return Settings(**flags, **given)
    except ValidationError as exc:
        print(f"cvsm: invalid setting (flag or CVSM_* variable): {exc}", file=sys.stderr)
        raise SystemExit(2) from None
