"""The ONNX Runtime path matches the torch reference, its graph cache behaves, the gate is safe."""

from __future__ import annotations

import ctypes
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import checkpoint
from model.encoder import CVSMModel
from model.inference import backends, quality, selection
from model.inference.embedder import Embedder
from model.inference.gate import VocalGate

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(init_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    shutil.copy(init_checkpoint, folder / "init.pt")
    return folder


@pytest.fixture(scope="module")
def pair(model_dir: Path) -> tuple[Embedder, Embedder]:
    ref = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="torch")
    fast = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="auto")
    return ref, fast


def catalog(n: int = 12, seconds: float = 3.0) -> list[np.ndarray]:
    """Tracks with a shared "voice" per pair of tracks, so the rankings are not all ties."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16_000)) / 16_000
    out = []
    for i in range(n):
        f0 = 110 * 2 ** ((i // 2) / 6)
        tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        out.append((tone + 0.3 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def test_auto_measures_exact_runtimes_and_caches_the_choice(
        model_dir: Path, pair: tuple[Embedder, Embedder]) -> None:
    ref, fast = pair
    assert ref.backend == "torch" and fast.backend in selection.EXACT
    assert fast.fingerprint == ref.fingerprint  # same vectors, same catalog
    # no quality record for this model: only the exact runtimes were measured
    assert set(fast.probe["ms_per_30_chunks"]) == set(selection.candidates(frozenset()))
    cache = json.loads((model_dir / selection.CACHE_FILE).read_text())
    assert fast.probe in cache.values()
    again = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="auto")
    assert again.probe == fast.probe and again.backend == fast.backend  # read, not re-measured


def test_openvino_matches_reference(model_dir: Path, pair: tuple[Embedder, Embedder]) -> None:
    pytest.importorskip("openvino")
    ref, _ = pair
    ov = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="openvino")
    assert ov.fingerprint == ref.fingerprint
    tracks = catalog()
    a, b = ref.embed_many(tracks), ov.embed_many(tracks)
    assert np.all(np.sum(a * b, axis=1) >= 0.999)


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int),
                ("ss_size", ctypes.c_size_t)]


def _signal_stack() -> tuple[int | None, int, int]:
    """This thread's alternate signal stack, from sigaltstack(2): (pointer, flags, size)."""
    out = _StackT()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(out)) == 0
    return out.ss_sp, out.ss_flags, out.ss_size


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack via glibc")
def test_openvino_leaves_the_callers_signal_stack_alone(model_dir: Path) -> None:
    """OpenVINO's CPU plugin gives the thread that compiles an 11.5 KB alternate signal stack.
    On the main thread CPython's SIGTERM handler then ran on it and `cvsm serve` died of SIGSEGV
    on about half of its stops (a CI failure); compiling happens on a helper thread instead."""
    pytest.importorskip("openvino")
    before = _signal_stack()
    ov = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="openvino")
    assert ov.embed_waveform(catalog(1)[0]).shape == (ov.dim,)
    assert _signal_stack() == before


def test_bf16_is_marked_unless_its_gate_passed(model_dir: Path, tmp_path: Path,
                                               pair: tuple[Embedder, Embedder]) -> None:
    """Ungated, bf16 vectors get their own catalog; once a gate record measured on this CPU
    says the path kept retrieval for this model, they share the fp32 fingerprint and `auto`
    may pick them. A record from another CPU does not count (its kernels round differently)."""
    pytest.importorskip("openvino")
    ref, _ = pair
    bf16 = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="openvino-bf16")
    assert bf16.fingerprint == ref.fingerprint + "+bf16"
    vectors = ref.embed_many(catalog())
    noisy = vectors + np.random.default_rng(0).normal(0, 0.3, vectors.shape).astype(np.float32)
    labels, songs = np.arange(12) // 2, np.arange(12)
    assert quality.gate(vectors, vectors, labels, songs)["passed"]
    assert not quality.gate(vectors, noisy / np.linalg.norm(noisy, axis=1, keepdims=True),
                            labels, songs)["passed"]
    record = quality.gate(vectors, bf16.embed_many(catalog()), labels, songs)
    gates = tmp_path / quality.GATES_FILE
    here = selection.cpu_signature()
    elsewhere = {"cpu": "Other CPU [000000000000]", "backends": {"openvino-bf16": record}}
    gates.write_text(json.dumps({ref.fingerprint: elsewhere}))  # the one-record file format
    assert quality.passed(gates, ref.fingerprint, here) == frozenset()
    assert quality.gated_elsewhere(gates, ref.fingerprint, here) == [elsewhere["cpu"]]
    moved = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="openvino-bf16",
                                     gates=gates)
    assert moved.fingerprint == ref.fingerprint + "+bf16"  # gated on another CPU only
    mine = {"cpu": here, "backends": {"openvino-bf16": record}}
    both = quality.with_record(quality.read_gates(gates), ref.fingerprint, mine)
    gates.write_text(json.dumps(quality.with_record(both, ref.fingerprint, mine)))
    assert [r["cpu"] for r in quality.read_gates(gates)[ref.fingerprint]] == [
        elsewhere["cpu"], here]  # one record per CPU, re-measuring replaces it
    again = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="openvino-bf16",
                                     gates=gates)
    assert again.fingerprint == ref.fingerprint and record["passed"]
    assert "openvino-bf16" in selection.candidates(quality.passed(gates, ref.fingerprint, here))


def test_onnx_matches_reference(pair: tuple[Embedder, Embedder]) -> None:
    ref, fast = pair
    tracks = catalog()
    a, b = ref.embed_many(tracks), fast.embed_many(tracks)
    assert np.all(np.sum(a * b, axis=1) >= 0.999)
    np.testing.assert_allclose(fast.embed_waveform(tracks[0]), b[0], atol=1e-5)
    top_a = np.argsort(-(a @ a.T), axis=1)[:, :10]
    top_b = np.argsort(-(b @ b.T), axis=1)[:, :10]
    assert np.array_equal(top_a, top_b)


def test_graph_cached_and_reused(model_dir: Path, pair: tuple[Embedder, Embedder],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    graphs = list(model_dir.glob("*.onnx"))
    assert len(graphs) == 1 and pair[0].fingerprint in graphs[0].name
    monkeypatch.setattr(backends, "export_backbone", lambda *a: pytest.fail("re-exported"))
    again = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="onnx")
    assert again.runner is not None


def test_graph_invalidated_when_model_changes(model_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    path = model_dir / "other.pt"
    checkpoint.export_inference({"model": CVSMModel().state_dict(), "config": {}}, path)
    other = Embedder.from_checkpoint(path, "cpu", backend="onnx")
    graph = backends.graph_path(path, other.fingerprint, int8=False)
    assert graph.is_file() and backends.graph_fingerprint(graph) == other.fingerprint
    # a stale graph under the right name (copied over it) is detected and rebuilt
    stale = next(g for g in model_dir.glob("init.*.onnx"))
    shutil.copy(stale, graph)
    assert backends.graph_fingerprint(graph) != other.fingerprint
    backends.ensure_graph(other.model.backbone, other.fingerprint, path)
    assert backends.graph_fingerprint(graph) == other.fingerprint


def test_read_only_folder_uses_cache_dir(model_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.os, "access", lambda *a: False)
    emb = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="onnx",
                                   cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob(f"{emb.fingerprint}*.onnx"))


def test_gate_never_drops_every_chunk(pair: tuple[Embedder, Embedder]) -> None:
    _, fast = pair
    closed = VocalGate(np.zeros(128, np.float32), bias=-100.0)
    logmel = fast.features(np.random.default_rng(0).standard_normal((5, 16_000))
                           .astype(np.float32)).numpy()
    assert closed.select(logmel).sum() == 1
    assert closed.select(logmel, np.zeros(5, bool)).sum() == 1
    gated = Embedder(fast.model, fast.device, "x", {}, runner=fast.runner).with_gate(closed)
    vec = gated.embed_waveform(catalog(1)[0])
    assert np.isfinite(vec).all() and abs(np.linalg.norm(vec) - 1) < 1e-5
    assert gated.fingerprint.startswith("x+g")


def test_bundled_gate_loads() -> None:
    gate = VocalGate.load()
    assert gate.weights.shape == (128,) and 0 < gate.threshold < 1


def test_static_int8_graph_is_close_and_its_own_catalog(model_dir: Path,
                                                        pair: tuple[Embedder, Embedder]) -> None:
    ref, _ = pair
    q8 = Embedder.from_checkpoint(model_dir / "init.pt", "cpu", backend="onnx-int8")
    assert q8.fingerprint == ref.fingerprint + "+int8s"  # int8 vectors never mix with fp32
    graph = backends.graph_path(model_dir / "init.pt", ref.fingerprint, int8=True)
    assert backends.graph_fingerprint(graph) == ref.fingerprint
    import onnx

    ops = {node.op_type for node in onnx.load(str(graph)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "ConvInteger" not in ops
    tracks = catalog()
    cos = np.sum(ref.embed_many(tracks) * q8.embed_many(tracks), axis=1)
    assert np.median(cos) >= 0.99, cos
