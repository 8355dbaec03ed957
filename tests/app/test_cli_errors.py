"""A forgiving CLI: each listed user mistake is one line on stderr naming the fix, exit status
2, and nothing created; `--help` and `--version` answer without loading the heavy stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PLAIN

MISTAKES = {
    "missing catalog": ["index", "--catalog", "/no/such/dir"],
    "csv without id column": ["index", "--catalog", "noid.csv"],
    "missing model file": ["serve", "--checkpoint", "/missing.pt", "--no-demo"],
    "missing model for index": ["index", "--catalog", "noid.csv", "--checkpoint", "/no.pt"],
    "missing manifest": ["evaluate", "--data", "/no.csv", "--out", "e", "--baseline", "mfcc"],
    "missing calibration data": ["calibrate", "--data", "/no.csv", "--out", "c.json"],
    "malformed extra model": ["serve", "--model", "kd", "--no-demo"],
    "missing extra model file": ["serve", "--model", "kd=/no.pt", "--no-demo"],
    "extra model named default": ["serve", "--model", "default=/no.pt", "--no-demo"],
    "study of one model": ["study", "create", "--name", "s", "--models", "default",
                           "--queries", "/no"],
}


def _cvsm(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_one_line_exit_2_nothing_created(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "noid.csv").write_text("name,file\na,b.wav\n")
    done = _cvsm(args, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cvsm {args[0]}: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noid.csv"]


def test_help_and_version_are_fast(tmp_path: Path) -> None:
    """The figure goes to docs (under 1 s here); the assertion keeps a margin for busy CI."""
    for args in (["--help"], ["--version"], ["index", "--help"]):
        start = time.perf_counter()
        done = _cvsm(args, tmp_path)
        seconds = time.perf_counter() - start
        assert done.returncode == 0 and done.stdout, done.stderr
        assert seconds < 3.0, (args, seconds)
        print(f"cvsm {' '.join(args)}: {seconds:.2f} s")


def test_every_subcommand_has_a_description_and_every_option_help() -> None:
    import argparse

    from app.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            assert action.help or action.dest == "help", (name, action.option_strings)
        text = command.format_help()
        assert "default: None" not in text, name
