"""`cvsm study export` and `cvsm study results` (issue 16) on a real SQLite catalog database:
the CSV holds every vote with its winner spelled out, the results print the hand-checkable
counts, an unknown study is one line on stderr and exit 2."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index import db, studies
from index.studies import TrialSpec

ROOT = Path(__file__).resolve().parents[2]


def cvsm(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "app.cli", *argv], cwd=cwd, text=True,
                          env=env, capture_output=True, timeout=120)


@pytest.fixture
def study_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cat.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    trials = [TrialSpec(f"q{i}", "old", "new", f"o{i}", f"n{i}") for i in range(3)]
    studies.create_study(sessions, "s1", ["old", "new"], trials)
    studies.record_vote(sessions, 1, "p1", "b", left="b", comment="clearer, same vibrato")
    studies.record_vote(sessions, 2, "p1", "a")
    studies.record_vote(sessions, 3, "p2", "tie")
    engine.dispose()
    return url


def test_export_writes_every_vote(study_db: str, tmp_path: Path) -> None:
    out = tmp_path / "votes.csv"
    done = cvsm("study", "export", "--name", "s1", "--db", study_db, "--out", str(out),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["trial_id"], r["participant"], r["winner"]) for r in rows] == [
        ("1", "p1", "new"), ("2", "p1", "old"), ("3", "p2", "tie")]
    assert rows[0]["left_model"] == "new" and rows[0]["comment"] == "clearer, same vibrato"


def test_results_print_the_counts(study_db: str, tmp_path: Path) -> None:
    done = cvsm("study", "results", "--name", "s1", "--db", study_db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 votes, 2 participants" in done.stdout
    assert "new vs old: 1-1, 1 ties, 2 participants; new wins 0.500 [" in done.stdout


def test_results_plot_is_a_png(study_db: str, tmp_path: Path) -> None:
    out = tmp_path / "study.png"
    done = cvsm("study", "results", "--name", "s1", "--db", study_db, "--plot", str(out),
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5_000


def test_unknown_study_is_one_line_and_exit_2(study_db: str, tmp_path: Path) -> None:
    done = cvsm("study", "export", "--name", "nope", "--db", study_db, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no study named 'nope'" in done.stderr
