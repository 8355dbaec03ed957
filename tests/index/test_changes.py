"""The change feed (issue 15): two catalogs over one database, as two API replicas with their
own in-memory indexes, see each other's uploads and deletions by `follow()` alone; every writer
records its changes; on PostgreSQL a change that commits after a later one is still seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from index import changes, db
from index.catalog import Catalog
from index.job import JobConfig, run_index
from index.schema import TrackChange
from model.audio.decode import load
from model.data.manifest import read_manifest


def _add(catalog: Catalog, path: Path, track_id: str) -> np.ndarray:
    data = path.read_bytes()
    samples = load(data)
    catalog.add_track(samples, source_bytes=data, filename=path.name, external_id=track_id)
    return catalog.repository.vector_of(track_id)


def test_replicas_follow_each_other(tiny_catalog, tmp_path, db_url, embedder) -> None:
    run_index(JobConfig(catalog=tiny_catalog, data_dir=tmp_path / "a", db_url=db_url,
                        progress=False), embedder)
    a, b = Catalog(db_url, tmp_path / "a", embedder), Catalog(db_url, tmp_path / "b", embedder)
    a.open()
    b.open()
    assert b.follow() == 0 and b.stats()["count"] == 4  # opened in full from SQL
    tracks = read_manifest(tiny_catalog)
    vector = _add(a, tracks[0].mixture, "new")
    assert b.follow() == 1 and b.search(vector, 1)[0][0].id in ("new", tracks[0].track_id)
    assert "new" in {r.id for r, _ in b.search(vector, 5)}
    assert b.follow() == 0  # nothing new: nothing done
    assert a.delete_track("new") and b.follow() == 1
    assert "new" not in {r.id for r, _ in b.search(vector, 5)}
    # a job's writes reach a running replica too
    run_index(JobConfig(catalog=tiny_catalog, data_dir=tmp_path / "job", db_url=db_url,
                        progress=False), embedder)  # nothing changed: no change rows
    assert b.follow() == 0
    a.close()
    b.close()


def test_every_writer_records_its_changes(tiny_catalog, tmp_path, embedder) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    run_index(JobConfig(catalog=tiny_catalog, data_dir=tmp_path / "d", db_url=url,
                        progress=False), embedder)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(TrackChange)) == 4
    assert changes.prune(sessions, older_than_s=3600) == 0
    assert changes.prune(sessions, older_than_s=-1) == 4
    with sessions.begin() as session:  # a day-old row: the next job run drops it
        session.add(TrackChange(vector_id=1, created_at=datetime.now(UTC) - timedelta(days=2)))
    run_index(JobConfig(catalog=tiny_catalog, data_dir=tmp_path / "d", db_url=url,
                        progress=False), embedder)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(TrackChange)) == 0
    engine.dispose()


def test_a_late_commit_is_not_missed(pg_schema) -> None:
    """PostgreSQL: seq 2 commits while seq 1's transaction is still open; the feed reports 2,
    then 1 once it commits (the gap is re-read)."""
    url = pg_schema()
    db.migrate(url)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    feed = changes.ChangeFeed(sessions)
    feed.start()
    slow = sessions()
    slow.add(TrackChange(vector_id=111))
    slow.flush()  # takes seq 1, not committed yet
    with sessions.begin() as fast:
        fast.add(TrackChange(vector_id=222))  # seq 2, committed first
    assert feed.poll() == {222} and list(feed.gaps) == [1]
    slow.commit()
    slow.close()
    assert feed.poll() == {111} and not feed.gaps
    assert feed.poll() == set()
    engine.dispose()


def test_gaps_expire(tmp_path, monkeypatch) -> None:
    """A number a rolled-back transaction took never appears: it is given up after a while."""
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    db.migrate(url)
    engine = db.make_engine(url)
    feed, top = changes.ChangeFeed(db.session_factory(engine)), 5
    feed._advance({top})
    assert sorted(feed.gaps) == list(range(1, top)) and feed.cursor == top
    monkeypatch.setattr(changes, "GAP_WAIT_S", 0.0)
    feed._advance(set())
    assert not feed.gaps
    engine.dispose()
