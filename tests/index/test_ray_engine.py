"""`cvsm index --engine ray` (issue 15) on a real local Ray cluster: a head and a second worker
node on 127.0.0.1 (Ray's own cluster utilities). The same catalog indexed by the local engine
and through the cluster gives the same rows and vectors (cosine >= 0.9999), broken files
recorded alike; with an embedding worker process killed mid-job, the job still ends with every
track indexed exactly once; a re-run embeds nothing that was committed."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from index import db
from index.job import JobConfig, run_index
from index.ray_job import RayOptions, run_index_ray
from index.schema import Track
from index.store import decode_vector
from model.data.manifest import read_manifest
from model.inference.embedder import Embedder
from tests.conftest import PLAIN

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402 - after the skip


@pytest.fixture(scope="module")
def cluster():
    """A head node and one more worker node, one CPU each, on loopback."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                          "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


def _rows(url: str) -> dict[str, tuple[str, str, np.ndarray | None]]:
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        rows = {r.external_id: (r.status, r.content_hash,
                                decode_vector(r.vector) if r.vector else None)
                for r in session.scalars(select(Track))}
    engine.dispose()
    return rows


def _ray_job(catalog: Path, data: Path, url: str, checkpoint: Path, embedder: Embedder,
             cluster, **opts):
    job = JobConfig(catalog=catalog, data_dir=data, db_url=url, batch=2, progress=False)
    make = partial(Embedder.from_checkpoint, checkpoint, backend="torch", threads=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        return run_index_ray(job, embedder, make, RayOptions(batch=2, **opts))
    finally:
        ray.shutdown()


def test_ray_engine_matches_the_local_one(cluster, tiny_catalog, tmp_path, db_factory,
                                          embedder, init_checkpoint) -> None:
    broken = read_manifest(tiny_catalog)[3].mixture
    broken.write_bytes(b"RIFF not really audio")
    local_url, ray_url = db_factory(), db_factory()
    local = run_index(JobConfig(catalog=tiny_catalog, data_dir=tmp_path / "local",
                                db_url=local_url, progress=False), embedder)
    done = _ray_job(tiny_catalog, tmp_path / "ray", ray_url, init_checkpoint, embedder, cluster)
    assert (local.indexed, local.failed) == (3, 1)
    assert (done.indexed, done.failed, done.vectors) == (3, 1, 3)
    want, got = _rows(local_url), _rows(ray_url)
    assert set(got) == set(want)
    for track_id, (status, digest, vector) in want.items():
        assert got[track_id][:2] == (status, digest)
        if vector is not None:
            assert float(vector @ got[track_id][2]) >= 0.9999
    again = _ray_job(tiny_catalog, tmp_path / "ray", ray_url, init_checkpoint, embedder,
                     cluster)
    assert (again.indexed, again.unchanged) == (0, 4)  # committed rows (failed too) are not redone


def _embedding_workers() -> list[int]:
    """Pids of processes running the embedding actor (Ray names them in their title)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"_Embed" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _kill_an_embedding_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first process running the embedding actor, once it is up."""
    while not stop.is_set():
        for pid in _embedding_workers():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


@pytest.mark.timeout(600)
def test_a_killed_worker_loses_nothing_and_doubles_nothing(cluster, synth_manifest, tmp_path,
                                                            db_url, embedder,
                                                            init_checkpoint) -> None:
    url = db_url
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_an_embedding_worker, args=(stop, killed))
    killer.start()
    try:
        done = _ray_job(synth_manifest, tmp_path / "data", url, init_checkpoint, embedder,
                        cluster)
    finally:
        stop.set()
        killer.join()
    assert killed, "no embedding worker was seen to kill"
    n = len(read_manifest(synth_manifest))
    assert (done.indexed, done.failed, done.vectors) == (n, 0, n)
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Track)) == n
        assert session.scalar(select(func.count(func.distinct(Track.external_id)))) == n
    engine.dispose()


def test_a_pool_that_leaves_no_cpu_for_decoding_is_refused(cluster, tiny_catalog, tmp_path,
                                                          embedder, init_checkpoint) -> None:
    """Two 1-CPU actors on a 2-CPU cluster would starve the decoding tasks (Ray Data waits for
    ever): refused before anything is written."""
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    with pytest.raises(ValueError, match="fewer --actors"):
        _ray_job(tiny_catalog, tmp_path / "data", url, init_checkpoint, embedder, cluster,
                 actors=2)
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Track)) == 0
    engine.dispose()


@pytest.mark.timeout(600)
def test_a_rerun_after_the_driver_died_resumes(cluster, synth_manifest, tmp_path, embedder,
                                               init_checkpoint) -> None:
    """`cvsm index --engine ray` SIGKILLed once some batches are committed: the next run
    embeds only what was not committed, and the catalog ends complete."""
    import subprocess
    import sys

    url, data = f"sqlite:///{tmp_path / 'd.sqlite'}", tmp_path / "data"
    n = len(read_manifest(synth_manifest))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
    driver = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "index", "--catalog", str(synth_manifest), "--engine",
         "ray", "--address", cluster.address, "--db", url, "--data-dir", str(data),
         "--checkpoint", str(init_checkpoint), "--backend", "torch", "--batch", "2",
         "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def committed() -> int:
        engine = db.make_engine(url)
        try:
            with db.session_factory(engine)() as session:
                return session.scalar(select(func.count()).select_from(Track)) or 0
        except Exception:  # noqa: BLE001 - the job has not created its tables yet
            return 0
        finally:
            engine.dispose()

    deadline = time.monotonic() + 300
    while committed() == 0 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.kill()
    driver.wait(timeout=30)
    before = committed()
    assert 0 < before < n, f"the driver was killed with {before} of {n} rows committed"
    done = _ray_job(synth_manifest, data, url, init_checkpoint, embedder, cluster)
    assert (done.unchanged, done.indexed, done.vectors) == (before, n - before, n)
