import hashlib
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from model.audio import decode as audio
from model.data.manifest import ManifestError, check_tracks, read_activity, read_manifest
from model.data.synth import generate


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_synth_is_deterministic(tmp_path) -> None:
    a = generate(tmp_path / "a", singers=2, songs=2, seconds=3.0, seed=5)
    b = generate(tmp_path / "b", singers=2, songs=2, seconds=3.0, seed=5)
    assert _digest(a.parent) == _digest(b.parent)


def test_synth_manifest_round_trip(synth_manifest) -> None:
    tracks = read_manifest(synth_manifest)
    assert len(tracks) == 12
    check_tracks(tracks, need_stems=True, need_artist=True)
    assert {t.gender for t in tracks} == {"male", "female"}
    t = tracks[0]
    vocals = audio.load(t.vocals, allow_silent=True)
    acc = audio.load(t.accompaniment)
    mix = audio.load(t.mixture)
    n = min(len(vocals), len(acc), len(mix))
    np.testing.assert_allclose(mix[:n], np.clip(vocals[:n] + acc[:n], -1, 1), atol=2e-4)
    flags = read_activity(t.vocal_activity)
    assert 0.2 < flags.mean() < 0.95  # sings, with breaths between phrases


def test_singers_differ_in_pitch(synth_manifest) -> None:
    """Male and female synthetic singers sit in different pitch ranges: the median
    autocorrelation pitch of the men's takes is below the women's (songs move each singer's
    melody around, so single takes may overlap; seeds 1-7 all keep the medians apart)."""
    tracks = read_manifest(synth_manifest)

    def pitch(path) -> float:
        x, n, sr = audio.load(path), 800, 16_000
        found = []
        for start in range(0, len(x) - n, n):
            frame = x[start:start + n] - x[start:start + n].mean()
            if np.sqrt((frame ** 2).mean()) < 0.01:
                continue  # a breath between phrases
            ac = np.correlate(frame, frame, "full")[n - 1:]
            lag = sr // 400 + int(np.argmax(ac[sr // 400:sr // 70]))
            found.append(sr / lag)
        return float(np.median(found))

    by_gender = {g: [pitch(t.vocals) for t in tracks if t.gender == g] for g in ("male", "female")}
    assert np.median(by_gender["male"]) < 0.8 * np.median(by_gender["female"]), by_gender


def test_synthesis_is_the_same_in_every_process(tmp_path) -> None:
    """Everything derives from the seed (no per-process string hashing): two interpreters
    write identical audio."""
    import os
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from model.data.synth import generate; "
            "generate(Path(sys.argv[1]), singers=1, songs=1, seconds=1.0, seed=3)")
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": "random"})
    first, second = sorted((tmp_path / "a").rglob("*.wav")), sorted((tmp_path / "b").rglob("*.wav"))
    assert first and [f.read_bytes() for f in first] == [f.read_bytes() for f in second]


def test_mir1k_clips_csv_is_readable(mir1k_manifest) -> None:
    tracks = read_manifest(mir1k_manifest)
    assert len(tracks) == 746
    assert len({t.artist for t in tracks}) == 13
    check_tracks(tracks[:20], need_stems=True, need_artist=True)
    assert read_activity(tracks[0].vocal_activity).dtype == bool


def test_manifest_errors_name_the_row(tmp_path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("track_id,artist,vocals,accompaniment\na,x,v.wav,a.wav\nb,,,a2.wav\n")
    with pytest.raises(ManifestError, match="row 3"):  # accompaniment alone is no track
        read_manifest(m)
    m.write_text("track_id,artist,vocals,accompaniment\na,x,v.wav,a.wav\nb,,v2.wav,\n")
    assert [t.vocals_only for t in read_manifest(m)] == [False, True]  # an isolated voice
    m.write_text("track_id,artist,vocals,accompaniment\na,,v.wav,a.wav\n")
    tracks = read_manifest(m)
    with pytest.raises(ManifestError, match=r"row 2 \(a\).*no artist"):
        check_tracks(tracks, need_stems=True, need_artist=True)
    with pytest.raises(ManifestError, match="vocals file not found"):
        check_tracks(tracks, need_stems=True, need_artist=False)


def test_cli_version_and_help(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "app.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"cvsm {metadata.version('cvsm')}"
    out = subprocess.run([sys.executable, "-m", "app.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "synth" in out.stdout
    subprocess.run([sys.executable, "-m", "app.cli", "synth", "--out", str(tmp_path / "s"),
                    "--singers", "2", "--songs", "1", "--seconds", "2"], check=True,
                   capture_output=True)
    assert len(read_manifest(tmp_path / "s" / "manifest.csv")) == 2
