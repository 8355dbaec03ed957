"""Several models over one catalog (issue 16): `run_model_index` adds another model's vectors of
the catalog's rows, the catalog serves each model's index by name, uploads and deletions keep
every model's index in step, and the other model's vectors are its own (not the default's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from index.catalog import Catalog, UnknownModelError
from index.job import JobConfig, run_index
from index.model_job import OwnModelError, run_model_index
from index.schema import TrackVector
from index.studies import create_study, next_trial
from index.study_plan import plan_trials, track_query
from index.vector_store import index_folder
from index.vectors import read_index_manifest
from model.audio.decode import load
from model.data.manifest import read_manifest
from model.inference.embedder import Embedder


@pytest.fixture(scope="module")
def other(other_checkpoint: Path) -> Embedder:
    return Embedder.from_checkpoint(other_checkpoint, device="cpu")


def _jobs(tiny_catalog: Path, data: Path, db_url: str) -> JobConfig:
    return JobConfig(catalog=tiny_catalog, data_dir=data, db_url=db_url, progress=False)


def test_other_model_indexed_served_and_kept_in_step(tiny_catalog, tmp_path, db_url, embedder,
                                                     other) -> None:
    assert other.fingerprint != embedder.fingerprint
    data = tmp_path / "data"
    cfg = _jobs(tiny_catalog, data, db_url)
    assert run_index(cfg, embedder).indexed == 4
    first = run_model_index(cfg, other)
    assert (first.indexed, first.unchanged, first.skipped, first.vectors) == (4, 0, 0, 4)
    again = run_model_index(cfg, other)  # incremental: nothing re-embedded
    assert (again.indexed, again.unchanged, again.vectors) == (0, 4, 4)
    assert read_index_manifest(index_folder(data, other.fingerprint)).fingerprint == \
        other.fingerprint
    with pytest.raises(OwnModelError):
        run_model_index(cfg, embedder)

    catalog = Catalog(db_url, data, embedder)
    catalog.attach("b", other)
    catalog.open()
    tracks = read_manifest(tiny_catalog)
    query_id = tracks[0].track_id
    own = catalog.repository.vector_of(query_id)
    theirs = catalog.repository.vector_of(query_id, other.fingerprint)
    expected = other.embed_waveform(load(tracks[0].mixture.read_bytes()))
    assert float(theirs @ expected) > 0.9999 and float(own @ theirs) < 0.999
    hits_b = catalog.search(theirs, 4, model="b")
    direct = {t.track_id: other.embed_waveform(load(t.mixture.read_bytes())) for t in tracks}
    assert [r.id for r, _ in hits_b] == sorted(direct, key=lambda i: -float(theirs @ direct[i]))
    for record, score in hits_b:
        assert score == pytest.approx(float(theirs @ direct[record.id]), abs=1e-4)
    with pytest.raises(UnknownModelError):
        catalog.search(theirs, 4, model="nope")
    assert [m["name"] for m in catalog.model_stats()] == ["default", "b"]

    # a study's trials: each model's candidates paired by rank, never the query or its song
    query = track_query(catalog, query_id, ["default", "b"])
    plan = plan_trials(catalog, ["default", "b"], [query], 2)
    assert len(plan.trials) + plan.identical == 2 and plan.short == 0
    song = {t.track_id: t.song for t in tracks}
    for trial in plan.trials:
        assert song[query_id] not in (song[trial.candidate_a], song[trial.candidate_b])
    if plan.trials:
        create_study(catalog.repository.sessions, "s", ["default", "b"], plan.trials)
        assert next_trial(catalog.repository.sessions, "s", "p1").query_ref == query_id

    # an upload is embedded by both models; a deletion leaves both indexes and SQL
    t = tracks[1]
    data_bytes = t.mixture.read_bytes()
    catalog.add_track(load(data_bytes), source_bytes=data_bytes, filename="x.wav",
                      external_id="upload-1", artist=t.artist)
    assert catalog.model("b").vectors.count == 5
    assert catalog.repository.vector_of("upload-1", other.fingerprint) is not None
    assert catalog.delete_track(query_id)
    assert catalog.stats()["count"] == 4 and catalog.model("b").vectors.count == 4
    with catalog.repository.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TrackVector)) == 4
    catalog.close()

    reopened = Catalog(db_url, data, embedder)  # the saved side index reloads and agrees
    reopened.attach("b", other)
    reopened.open()
    ids = {r.id for r, _ in reopened.search(theirs, 10, model="b")}
    assert query_id not in ids and "upload-1" in ids and len(ids) == 4
    reopened.close()


def test_changed_audio_leaves_the_other_model_until_reindexed(tiny_catalog, tmp_path, embedder,
                                                              other) -> None:
    """A track re-indexed with new audio drops out of the other model's index (its vector
    there was of the old audio) until `run_model_index` embeds it again."""
    data, url = tmp_path / "data", f"sqlite:///{tmp_path / 'c.sqlite'}"
    cfg = _jobs(tiny_catalog, data, url)
    run_index(cfg, embedder)
    run_model_index(cfg, other)
    tracks = read_manifest(tiny_catalog)
    tracks[0].mixture.write_bytes(tracks[1].mixture.read_bytes())
    run_index(cfg, embedder)
    catalog = Catalog(url, data, embedder)
    catalog.attach("b", other)
    catalog.open()
    assert catalog.model("b").vectors.count == 3
    assert catalog.repository.vector_of(tracks[0].track_id, other.fingerprint) is None
    catalog.close()
    summary = run_model_index(cfg, other)
    assert (summary.indexed, summary.unchanged, summary.vectors) == (1, 3, 4)
    fresh = Catalog(url, data, embedder)
    fresh.attach("b", other)
    fresh.open()
    vector = fresh.repository.vector_of(tracks[0].track_id, other.fingerprint)
    assert np.allclose(vector, fresh.repository.vector_of(tracks[1].track_id, other.fingerprint),
                       atol=1e-5)
    fresh.close()
