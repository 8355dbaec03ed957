"""`cvsm index` / `cvsm merge` end to end on SQLite and PostgreSQL: real decoding, a real
(untrained) model, real FAISS; every test checks that SQL rows and FAISS vectors agree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from index import db
from index.catalog import Catalog
from index.job import JobConfig, run_index
from index.merge import merge
from index.schema import FAILED, INDEXED, IndexRun, Track
from index.store import sql_tags
from index.vectors import ModelMismatchError, VectorIndex
from model.data.manifest import read_manifest
from model.inference.embedder import Embedder

ROOT = Path(__file__).resolve().parents[2]


def job(catalog: Path, data_dir: Path, url: str, **kw) -> JobConfig:
    return JobConfig(catalog=catalog, data_dir=data_dir, db_url=url, progress=False, **kw)


def sql_and_faiss(url: str, data_dir: Path, fingerprint: str) -> tuple[dict, dict]:
    """(vector_id -> tag) of the live SQL rows and of the saved FAISS index, for comparison."""
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        sql = sql_tags(session, fingerprint)
    engine.dispose()
    index = VectorIndex.load(data_dir / "index", fingerprint)
    faiss_ids = {int(i): index.tags[int(i)] for i in index.ids()} if index else {}
    return sql, faiss_ids


def assert_agree(url: str, data_dir: Path, fingerprint: str, expected: int) -> None:
    sql, faiss_ids = sql_and_faiss(url, data_dir, fingerprint)
    assert len(sql) == expected
    assert faiss_ids == sql


def rows(url: str) -> dict[str, Track]:
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        out = {r.external_id: r for r in session.scalars(select(Track))}
    engine.dispose()
    return out


def test_migrations_upgrade_empty_database_to_head(db_url) -> None:
    db.migrate(db_url)
    db.migrate(db_url)  # idempotent
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    head = ScriptDirectory.from_config(db.alembic_config(db_url)).get_current_head()
    assert current == head
    assert {"tracks", "index_runs"} <= tables


def test_index_then_reindex_embeds_nothing(tiny_catalog, tmp_path, db_url, embedder) -> None:
    first = run_index(job(tiny_catalog, tmp_path / "data", db_url), embedder)
    assert (first.indexed, first.unchanged, first.failed) == (4, 0, 0)
    second = run_index(job(tiny_catalog, tmp_path / "data", db_url), embedder)
    assert (second.indexed, second.unchanged, second.failed) == (0, 4, 0)
    assert_agree(db_url, tmp_path / "data", embedder.fingerprint, 4)
    track = rows(db_url)[read_manifest(tiny_catalog)[0].track_id]
    assert track.artist and track.duration == pytest.approx(3.0, abs=0.05)
    assert track.status == INDEXED and track.model_fingerprint == embedder.fingerprint


def test_changed_file_is_reembedded(tiny_catalog, tmp_path, db_url, embedder) -> None:
    run_index(job(tiny_catalog, tmp_path / "data", db_url), embedder)
    target = read_manifest(tiny_catalog)[1]
    before = rows(db_url)[target.track_id]
    audio, rate = sf.read(target.mixture)
    sf.write(target.mixture, audio[::-1].copy(), rate)  # same length, different content
    again = run_index(job(tiny_catalog, tmp_path / "data", db_url), embedder)
    assert (again.indexed, again.unchanged) == (1, 3)
    after = rows(db_url)[target.track_id]
    assert after.content_hash != before.content_hash and after.vector != before.vector
    assert_agree(db_url, tmp_path / "data", embedder.fingerprint, 4)


def test_corrupt_file_is_recorded_and_skipped(tiny_catalog, tmp_path, db_url, embedder) -> None:
    broken = read_manifest(tiny_catalog)[2]
    broken.mixture.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(300))
    summary = run_index(job(tiny_catalog, tmp_path / "data", db_url, batch=2), embedder)
    assert (summary.indexed, summary.failed) == (3, 1)
    row = rows(db_url)[broken.track_id]
    assert row.status == FAILED and row.vector is None and row.error
    again = run_index(job(tiny_catalog, tmp_path / "data", db_url), embedder)
    assert (again.indexed, again.unchanged, again.failed) == (0, 4, 0)
    assert_agree(db_url, tmp_path / "data", embedder.fingerprint, 3)


def test_kill_9_mid_job_then_resume(tmp_path, db_url, embedder, init_checkpoint) -> None:
    from model.data.synth import generate

    # 30 tracks: enough work that the poller sees the job mid-way even when 2 decoding
    # processes (the default on 2 cores) keep the embedder fed and PostgreSQL polls are slow.
    total = 30
    catalog = generate(tmp_path / "cat", singers=5, songs=6, seconds=2.0, seed=3)
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "app.cli", "index", "--catalog", str(catalog), "--checkpoint",
           str(init_checkpoint), "--db", db_url, "--data-dir", str(data), "--batch", "1",
           "--no-progress", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        done = _wait_for_rows(db_url, proc, at_least=1, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 1 <= done < total, "the job should have been killed mid-way"
    assert _run_statuses(db_url) == ["running"]
    catalog_view = Catalog(db_url, data, embedder)  # a reader reconciles the partial state
    catalog_view.open(migrate=False)
    assert catalog_view.stats()["count"] == _indexed_count(db_url)
    catalog_view.close()
    resumed = run_index(job(catalog, data, db_url), embedder)
    assert resumed.unchanged >= done and resumed.indexed + resumed.unchanged == total
    assert_agree(db_url, data, embedder.fingerprint, total)


def _indexed_count(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Track)
                               .where(Track.status == INDEXED)) or 0
    except Exception:  # noqa: BLE001 - the job has not created the tables yet
        return 0
    finally:
        engine.dispose()


def _wait_for_rows(url: str, proc: subprocess.Popen, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = _indexed_count(url)
        if count >= at_least:
            return count
        if proc.poll() is not None:
            pytest.fail(f"the job ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    pytest.fail("no row was committed in time")


def _run_statuses(url: str) -> list[str]:
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        out = list(session.scalars(select(IndexRun.status).order_by(IndexRun.id)))
    engine.dispose()
    return out


def test_index_of_another_model_is_refused(tiny_catalog, tmp_path, db_url, embedder,
                                           other_checkpoint) -> None:
    data = tmp_path / "data"
    run_index(job(tiny_catalog, data, db_url), embedder)
    other = Embedder.from_checkpoint(other_checkpoint, "cpu")
    assert other.fingerprint != embedder.fingerprint
    with pytest.raises(ModelMismatchError):
        VectorIndex.load(data / "index", other.fingerprint)
    with pytest.raises(ModelMismatchError):
        Catalog(db_url, data, other).open()
    switched = run_index(job(tiny_catalog, data, db_url), other)  # a new model re-embeds all
    assert (switched.indexed, switched.unchanged) == (4, 0)
    assert_agree(db_url, data, other.fingerprint, 4)


def test_sharded_runs_and_merge_equal_a_single_run(tiny_catalog, tmp_path, db_factory,
                                                   embedder) -> None:
    single_url = db_factory()
    run_index(job(tiny_catalog, tmp_path / "single", single_url), embedder)
    shard_urls = [db_factory(), db_factory()]
    counts = [run_index(job(tiny_catalog, tmp_path / f"s{k}", url, shard=(k, 2)), embedder).indexed
              for k, url in enumerate(shard_urls)]
    assert sum(counts) == 4 and not (tmp_path / "s0" / "index").exists()
    merged_url = db_factory()
    summary = merge(merged_url, tmp_path / "merged", shard_urls)
    assert summary.vectors == 4 and summary.fingerprint == embedder.fingerprint
    one, many = rows(single_url), rows(merged_url)
    assert one.keys() == many.keys()
    for tid, row in one.items():
        assert many[tid].vector_id == row.vector_id and many[tid].content_hash == row.content_hash
        np.testing.assert_allclose(np.frombuffer(many[tid].vector, "<f4"),
                                   np.frombuffer(row.vector, "<f4"), atol=1e-5)
    assert_agree(merged_url, tmp_path / "merged", embedder.fingerprint, 4)
    a = VectorIndex.load(tmp_path / "single" / "index", embedder.fingerprint)
    b = VectorIndex.load(tmp_path / "merged" / "index", embedder.fingerprint)
    query = np.frombuffer(next(iter(one.values())).vector, "<f4")
    assert a.search(query, 4)[1].tolist() == b.search(query, 4)[1].tolist()


def test_sharded_runs_into_one_shared_database(tiny_catalog, tmp_path, db_url, embedder) -> None:
    for k in range(2):
        run_index(job(tiny_catalog, tmp_path / "worker", db_url, shard=(k, 2)), embedder)
    summary = merge(db_url, tmp_path / "data")  # the rows are all there: just build the index
    assert summary.copied == 0 and summary.vectors == 4
    assert_agree(db_url, tmp_path / "data", embedder.fingerprint, 4)


def test_folder_catalog_reads_tags_and_names(tmp_path, db_url, embedder) -> None:
    import av

    from model.audio.encode import encode

    folder = tmp_path / "music"
    folder.mkdir()
    tone = 0.3 * np.sin(np.linspace(0, 2000, 16000 * 2)).astype(np.float32)
    (folder / "Ada - Evening.wav").write_bytes(encode(tone, 16000, "wav"))
    tagged = folder / "x.flac"
    tagged.write_bytes(encode(tone[::-1].copy(), 16000, "flac"))
    with av.open(str(tagged)) as c:
        assert c.streams.audio
    summary = run_index(job(folder, tmp_path / "data", db_url, workers=2), embedder)
    assert (summary.indexed, summary.failed) == (2, 0)
    got = rows(db_url)
    assert (got["Ada - Evening.wav"].artist, got["Ada - Evening.wav"].title) == ("Ada", "Evening")
    assert got["x.flac"].title == "x"


def test_changed_file_in_an_hnsw_index(tiny_catalog, tmp_path, embedder) -> None:
    """HNSW cannot remove: the job soft-deletes and rebuilds once at the end."""
    url, data = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "data"
    run_index(job(tiny_catalog, data, url, index_factory="HNSW32,Flat"), embedder)
    target = read_manifest(tiny_catalog)[0]
    audio, rate = sf.read(target.mixture)
    sf.write(target.mixture, audio[::-1].copy(), rate)
    again = run_index(job(tiny_catalog, data, url, index_factory="HNSW32,Flat"), embedder)
    assert (again.indexed, again.unchanged, again.vectors) == (1, 3, 4)
    assert_agree(url, data, embedder.fingerprint, 4)
    index = VectorIndex.load(data / "index", embedder.fingerprint)
    new = np.frombuffer(rows(url)[target.track_id].vector, "<f4")
    assert index.factory == "HNSW32,Flat"
    assert index.search(new, 1)[1][0, 0] == db.vector_id_for(target.track_id)
