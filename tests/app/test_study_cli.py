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
import torch

from index import db, studies
from index.studies import TrialSpec
from model import checkpoint
from model.encoder import CVSMModel
from tests.conftest import PLAIN

ROOT = Path(__file__).resolve().parents[2]


def cvsm(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
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


@pytest.fixture(scope="module")
def two_model_dir(tmp_path_factory, synth_manifest, embedder, other_checkpoint) -> Path:
    """A SQLite catalog of the 12 synthetic tracks, indexed by the default model and, beside it,
    by a second one (`cvsm index --extra-model`)."""
    from index.job import JobConfig, run_index

    data = tmp_path_factory.mktemp("two") / "data"
    run_index(JobConfig(catalog=synth_manifest, data_dir=data, progress=False), embedder)
    done = cvsm("index", "--catalog", str(synth_manifest), "--extra-model", "--checkpoint",
                str(other_checkpoint), "--data-dir", str(data), "--backend", "torch",
                "--workers", "1", "--no-progress", cwd=data.parent)
    assert done.returncode == 0, done.stderr
    assert "indexed 12, unchanged 0, failed 0" in done.stdout and "skipped 0" in done.stdout
    return data


def test_create_plans_blind_trials(two_model_dir, tmp_path, synth_manifest, init_checkpoint,
                                   other_checkpoint) -> None:
    from model.data.manifest import read_manifest

    tracks = read_manifest(synth_manifest)
    song = {t.track_id: t.song for t in tracks}
    queries = tmp_path / "queries.csv"
    queries.write_text(f"track_id,path\n{tracks[0].track_id},\n{tracks[7].track_id},\n"
                       f",{tracks[4].mixture}\n")
    base = ("--data-dir", str(two_model_dir), "--checkpoint", str(init_checkpoint),
            "--backend", "torch")
    done = cvsm("study", "create", "--name", "ab", "--models", "default",
                f"b={other_checkpoint}", "--queries", str(queries), "--per-query", "3", *base,
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "from 3 queries, models default, b" in done.stdout and "/study/ab" in done.stdout

    engine = db.make_engine(db.sqlite_url(two_model_dir))
    sessions = db.session_factory(engine)
    from index.schema import StudyTrial

    with sessions() as session:
        trials = list(session.query(StudyTrial).order_by(StudyTrial.id))
    engine.dispose()
    identical = int(done.stdout.split("; ")[1].split()[0])
    assert len(trials) + identical == 3 * 3 and trials
    for t in trials:
        assert (t.model_a, t.model_b) == ("default", "b") and t.candidate_a != t.candidate_b
        if t.query_kind == "track":  # never the query's own track or its song
            assert song[t.query_ref] not in (song[t.candidate_a], song[t.candidate_b])
        else:
            assert t.query_kind == "upload" and (two_model_dir / t.query_ref).is_file()

    again = cvsm("study", "create", "--name", "ab", "--models", "default",
                 f"b={other_checkpoint}", "--queries", str(queries), *base, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    twice = cvsm("study", "create", "--name", "abc", "--models", "default",
                 f"b={other_checkpoint}", f"c={init_checkpoint}", "--queries", str(queries),
                 *base, cwd=tmp_path)
    assert twice.returncode == 2 and "already served" in twice.stderr
    torch.manual_seed(2)
    third = tmp_path / "third.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, third)
    unindexed = cvsm("study", "create", "--name", "abc", "--models", "default",
                     f"b={other_checkpoint}", f"c={third}", "--queries", str(queries), *base,
                     cwd=tmp_path)
    assert unindexed.returncode == 2 and "cvsm index --extra-model" in unindexed.stderr
    one = cvsm("study", "create", "--name", "x", "--models", "default", "--queries",
               str(queries), *base, cwd=tmp_path)
    assert one.returncode == 2 and "at least two" in one.stderr
