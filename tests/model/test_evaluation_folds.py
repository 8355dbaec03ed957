"""Issue 17's evaluation side: named folds, the RAVDESS overlay, vocals-only rows, whole-track
Resemblyzer, --retrieval-only / --fold and the multi-fold ablation table, on data made here."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from model.audio.signal import SAMPLE_RATE as SR
from model.data.manifest import ManifestTrack, read_manifest
from model.data.synth import make_singer, make_song, sing
from model.evaluation.data import load_corpus, load_track, read_audio
from model.evaluation.folds import FOLDS, MIR1K_A, MIR1K_B, fold_singers
from model.evaluation.overlay import build_overlay
from model.evaluation.retrieval import retrieval_suite

MIR1K_SINGERS = {"Ani", "Kenshin", "abjones", "amy", "ariel", "bobon", "davidson", "fdps",
                 "geniusturtle", "jmzen", "leon", "tammy", "yifen"}
ROOT = Path(__file__).resolve().parents[2]


def test_mir1k_folds_are_complementary_and_singer_disjoint() -> None:
    test_a, train_excl_a = fold_singers("A")
    test_b, train_excl_b = fold_singers("B")
    assert set(test_a) == set(MIR1K_A) == set(train_excl_a)
    assert set(test_b) == set(MIR1K_B) == set(train_excl_b)
    assert not set(test_a) & set(test_b)
    assert set(test_a) | set(test_b) == MIR1K_SINGERS
    test_r, excl_r = fold_singers("ravdess")
    assert test_r == excl_r == tuple(f"ravdess_a{n:02d}" for n in range(9, 17))
    assert set(FOLDS) == {"A", "B", "ravdess"}
    with pytest.raises(ValueError, match="unknown fold"):
        fold_singers("C")


@pytest.fixture(scope="module")
def voices_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A voices-extra look-alike: two test actors (2 sung takes each, one 8 s long so the 6 s
    synthetic stems must loop), a speech take and an actor outside the fold."""
    root = tmp_path_factory.mktemp("voices")
    (root / "audio").mkdir()
    rows = []
    takes = [("ravdess_a09", "male", "sung", "s01", 1.5),
             ("ravdess_a09", "male", "sung", "s02", 8.0),
             ("ravdess_a09", "male", "speech", "s01", 1.5),
             ("ravdess_a10", "female", "sung", "s01", 1.5),
             ("ravdess_a10", "female", "sung", "s02", 2.0),
             ("ravdess_a01", "male", "sung", "s01", 1.5)]
    for k, (singer, gender, kind, statement, seconds) in enumerate(takes):
        clip = f"{singer}_{kind}_{statement}_{k}"
        wave, _ = sing(make_singer(int(singer[-2:]), 3), make_song(k, 3), seconds, 3)
        wave = wave * 0.05 + 0.001 * np.sin(np.arange(len(wave)) / 7)  # ~ -40 dBFS, never silent
        sf.write(root / "audio" / f"{clip}.ogg", wave, SR, format="OGG", subtype="VORBIS")
        rows.append({"clip_id": clip, "singer": singer, "gender": gender,
                     "song_id": f"{singer}_{kind}_{statement}", "kind": kind, "source": "ravdess",
                     "duration_s": f"{seconds:.3f}", "vocals": f"audio/{clip}.ogg"})
    path = root / "clips.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ravdess_overlay_rule_level_and_idempotence(voices_csv, synth_manifest,
                                                    tmp_path) -> None:
    out = tmp_path / "ravdess"
    manifest = build_overlay(voices_csv, synth_manifest, out)
    tracks = read_manifest(manifest)
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [t.track_id for t in tracks] == sorted(t.track_id for t in tracks)
    assert {t.artist for t in tracks} == {"ravdess_a09", "ravdess_a10"}  # a01 is not tested
    assert len(tracks) == 4 and all("_sung_" in t.track_id for t in tracks)  # no speech
    assert set(rows[0]) >= {"track_id", "artist", "gender", "song", "vocals", "accompaniment"}
    stems = sorted(t.track_id for t in read_manifest(synth_manifest))
    for t, row in zip(tracks, rows, strict=True):
        assert t.vocals.is_absolute() and t.vocals.parent == voices_csv.parent / "audio"
        digest = hashlib.sha256(t.track_id.encode()).digest()
        assert row["accompaniment_stem"] == stems[int.from_bytes(digest[:8], "big") % len(stems)]
        vocals, acc = read_audio(t.vocals), read_audio(t.accompaniment)
        assert len(acc) == len(vocals)
        ratio_db = 20 * np.log10(np.sqrt(np.mean(vocals ** 2)) / np.sqrt(np.mean(acc ** 2)))
        assert abs(ratio_db) < 0.05  # 0 dB, up to 16-bit rounding
        assert sf.info(t.accompaniment).samplerate == SR and sf.info(t.accompaniment).channels == 1
        assert row["accompaniment_looped"] == str(int(len(vocals) > 6 * SR))
    assert sum(r["accompaniment_looped"] == "1" for r in rows) == 1
    first = _files(out)
    build_overlay(voices_csv, synth_manifest, out)
    assert _files(out) == first  # byte-identical re-run
    other = tmp_path / "cli"
    assert main(["fold-data", "ravdess", "--voices", str(voices_csv), "--accompaniment",
                 str(synth_manifest), "--out", str(other)]) == 0
    assert _files(other) == first
    corpus = load_corpus(manifest)
    for track, ev in zip(tracks, corpus, strict=True):
        assert np.allclose(ev.mixture, read_audio(track.vocals) + read_audio(track.accompaniment))


def test_vocals_only_row_is_its_own_mixture(tmp_path) -> None:
    wave, _ = sing(make_singer(0, 1), make_song(0, 1), 2.5, 1)
    path = tmp_path / "take.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    track = ManifestTrack(track_id="take", artist="a", row=2, vocals=path)
    assert track.mixture is None and track.accompaniment is None and track.vocals is not None
    ev = load_track(track)
    assert ev.vocals is not None and np.array_equal(ev.mixture, ev.vocals)
    assert ev.n_chunks == 3 and ev.voiced.any()


def test_retrieval_only_and_fold_flags(voices_csv, synth_manifest, init_checkpoint,
                                       tmp_path) -> None:
    out = tmp_path / "eval"
    rc = main(["evaluate", "--checkpoint", str(init_checkpoint), "--baseline", "mfcc",
               "--data", str(synth_manifest), "--out", str(out), "--retrieval-only",
               "--device", "cpu"])
    assert rc == 0
    assert "| init |" in (out / "summary.md").read_text()
    for name, embedding in (("init", "mean of sung 1 s chunks"), ("mfcc", "whole clip")):
        results = json.loads((out / name / "results.json").read_text())
        assert set(results["retrieval"]) == {"mix->mix", "vocals->mix", "vocals->vocals"}
        assert "artist_id" not in results and "similarity" not in results
        assert results["config"]["retrieval_only"] is True
        assert embedding in results["system"]["track_embedding"]
        report = (out / name / "report.md").read_text()
        assert "## Retrieval" in report and "## Artist ID" not in report
        with np.load(out / name / "tracks.npz") as saved:  # the vectors that were scored
            again = retrieval_suite({k: saved[k] for k in ("mixture", "vocals")},
                                    saved["artists"], saved["songs"])
            assert len(saved["track_ids"]) == results["corpus"]["tracks"]
        for direction, figures in again.items():
            assert figures["map"] == pytest.approx(results["retrieval"][direction]["map"])
        assert "track embedding: " in report and embedding in report
    fold_data = tmp_path / "fold"
    manifest = build_overlay(voices_csv, synth_manifest, fold_data)
    rc = main(["evaluate", "--baseline", "mfcc", "--data", str(manifest), "--fold", "ravdess",
               "--out", str(tmp_path / "evalR"), "--retrieval-only", "--device", "cpu"])
    assert rc == 0
    results = json.loads((tmp_path / "evalR" / "results.json").read_text())
    assert results["fold"] == "ravdess" and results["corpus"]["tracks"] == 4
    assert results["retrieval"]["mix->mix"]["queries"] == 4
    assert main(["evaluate", "--baseline", "mfcc", "--data", str(manifest), "--fold", "A",
                 "--artists", "x", "--out", str(tmp_path / "bad"), "--retrieval-only"]) == 2


def test_whole_track_skips_chunks_when_only_retrieving(synth_manifest) -> None:
    from model.evaluation.baselines import MFCCExtractor
    from model.evaluation.extract import extract_all

    corpus = load_corpus(synth_manifest)[:4]
    quick = extract_all(corpus, MFCCExtractor(), chunks=False)
    full = extract_all(corpus, MFCCExtractor())
    assert quick["mixture"].chunks == [] and len(full["mixture"].chunks) == 4
    assert np.allclose(quick["vocals"].tracks, full["vocals"].tracks, atol=1e-6)


def test_resemblyzer_utterance_batched_equals_embed_utterance() -> None:
    pytest.importorskip("resemblyzer")
    from model.evaluation.baselines import baseline_system

    system = baseline_system("resemblyzer-utterance")
    assert system.name == "resemblyzer-utterance" and system.utterance
    rng = np.random.default_rng(0)
    waves = [sing(make_singer(i, 5), make_song(i, 5), s, 5)[0] + 0.01 * rng.standard_normal(
        int(s * SR)).astype(np.float32) for i, s in enumerate((0.4, 2.0, 5.5))]
    batched = system.embed_tracks(waves)
    for wave, fast in zip(waves, batched, strict=True):
        plain = system.encoder.embed_utterance(system._prepare(wave))
        assert float(fast @ plain) >= 0.9999 and fast.shape == (256,)
    assert system.embed_chunks(np.zeros((3, SR), dtype=np.float32)).shape == (3, 256)
    assert baseline_system("resemblyzer").embed_tracks(waves) is None


def _fake_results(folder: Path, system: str, p1: float, m: float) -> None:
    (folder / system).mkdir(parents=True)
    directions = ("mix->mix", "vocals->mix", "vocals->vocals")
    results = {"system": {"name": system}, "retrieval": {
        d: {"p_at_1": p1 + k / 10, "map": m + k / 10, "queries": 10}
        for k, d in enumerate(directions)}}
    (folder / system / "results.json").write_text(json.dumps(results))


def test_ablation_table_means_the_mir1k_folds(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "ablation_table", ROOT / "benchmarks" / "ablation_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for fold, shift in (("A", 0.0), ("B", 0.2), ("R", 0.4)):
        _fake_results(tmp_path / fold, "mfcc", 0.1 + shift, 0.05 + shift)
        if fold != "B":
            _fake_results(tmp_path / fold, "my_system", 0.3, 0.2)
    module.main(["--fold", f"A={tmp_path / 'A'}", "--fold", f"B={tmp_path / 'B'}",
                 "--fold", f"ravdess={tmp_path / 'R'}"])
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("| system"))
    assert header.count("|") == 1 + 1 + 4 * 3  # system + (A, B, ravdess, mean) x 3 directions
    assert "mean A+B mix->mix" in header
    mfcc = next(line for line in lines if line.startswith("| MFCC"))
    cells = [c.strip() for c in mfcc.strip("|").split("|")]
    assert cells[1] == "0.100 / 0.050" and cells[7] == "0.500 / 0.450"
    assert cells[10] == "0.200 / 0.150"  # mean of A (0.1) and B (0.3) mix->mix
    mine = next(line for line in lines if line.startswith("| my_system"))
    assert mine.strip("|").split("|")[4].strip() == "-"  # missing from fold B
    assert mine.rstrip(" |").endswith("-")  # so no mean
    module.main(["--fold", f"A={tmp_path / 'A'}", "--fold", f"B={tmp_path / 'B'}", "--split"])
    out = capsys.readouterr().out
    assert "### Fold A" in out and "### Mean of folds A, B" in out
