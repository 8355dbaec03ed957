"""A deterministic synthetic corpus of "singers" over varied accompaniment, for tests and demos.

Each singer is a source-filter voice with its own pitch range, vocal-tract length (formant
scale), glottal tilt, breathiness, vibrato and jitter; each song has its own key, tempo, chord
progression, instrument timbres and drum pattern. Every singer sings every song, so the same
accompaniment sits under different voices: a model that matches accompaniment instead of voice
fails retrieval that excludes the query's own song. Everything derives from one integer seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from model.audio.signal import SAMPLE_RATE
from model.data.manifest import ACTIVITY_HOP_S, write_manifest

#: (F1..F4) of five vowels for an average adult vocal tract, Hz.
VOWELS = np.array([
    [730, 1090, 2440, 3400],  # a
    [530, 1840, 2480, 3500],  # e
    [270, 2290, 3010, 3700],  # i
    [570, 840, 2410, 3300],   # o
    [300, 870, 2240, 3300],   # u
], dtype=np.float64)
BANDWIDTHS = np.array([80, 100, 140, 200], dtype=np.float64)
SCALE = np.array([0, 2, 4, 5, 7, 9, 11])


@dataclass(frozen=True)
class Singer:
    name: str
    gender: str
    f0: float            # centre of the singing range, Hz
    tract: float         # formant scale (shorter tract -> higher formants)
    formant_jitter: np.ndarray
    tilt: float          # glottal source roll-off exponent
    breath: float        # aspiration noise level
    vib_rate: float
    vib_depth: float     # semitones
    jitter: float


def make_singer(index: int, seed: int) -> Singer:
    rng = np.random.default_rng([seed, 1, index])
    gender = "female" if index % 2 else "male"
    f0 = rng.uniform(190, 290) if gender == "female" else rng.uniform(100, 160)
    tract = rng.uniform(1.05, 1.22) if gender == "female" else rng.uniform(0.84, 0.98)
    return Singer(name=f"singer{index:02d}", gender=gender, f0=f0, tract=tract,
                  formant_jitter=rng.uniform(0.9, 1.1, size=4), tilt=rng.uniform(0.9, 1.8),
                  breath=rng.uniform(0.01, 0.15), vib_rate=rng.uniform(4.5, 6.8),
                  vib_depth=rng.uniform(0.15, 0.7), jitter=rng.uniform(0.001, 0.012))


@dataclass(frozen=True)
class Song:
    name: str
    root: float          # tonic frequency, Hz (accompaniment register)
    tempo: float         # beats per minute
    chords: np.ndarray   # scale degrees of the progression
    melody: np.ndarray   # scale steps of the vocal line
    timbre: np.ndarray   # harmonic weights of the chord instrument
    sustain: float       # chord decay time, s
    drums: float         # drum level


def make_song(index: int, seed: int) -> Song:
    rng = np.random.default_rng([seed, 2, index])
    return Song(name=f"song{index:02d}", root=110.0 * 2 ** (rng.integers(0, 12) / 12),
                tempo=rng.uniform(80, 140), chords=rng.choice([0, 3, 4, 5, 1], size=4),
                melody=np.cumsum(rng.integers(-2, 3, size=64)) % 9 - 4,
                timbre=rng.uniform(0.1, 1.0, size=6) / np.arange(1, 7) ** rng.uniform(0.5, 1.5),
                sustain=rng.uniform(0.3, 2.0), drums=rng.uniform(0.3, 1.0))


def _envelope(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Vocal-tract magnitude response at `freqs` (n,) for per-sample formants (n, 4)."""
    out = np.zeros_like(freqs)
    for k in range(formants.shape[1]):
        out += 1.0 / (1.0 + ((freqs - formants[:, k]) / (BANDWIDTHS[k] / 2)) ** 2)
    return out


def sing(singer: Singer, song: Song, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vocal stem and its per-sample singing mask."""
    rng = np.random.default_rng([seed, 3, zlib.crc32(f"{singer.name}/{song.name}".encode())])
    n = int(seconds * SAMPLE_RATE)
    f0 = np.zeros(n)
    vowel = np.zeros((n, 4))
    amp = np.zeros(n)
    beat = 60.0 / song.tempo
    t, note = rng.uniform(0.1, 0.6), 0
    while t < seconds - 0.3:
        for _ in range(int(rng.integers(3, 7))):  # one phrase
            dur = beat * rng.choice([0.5, 1.0, 1.5, 2.0])
            a, b = int(t * SAMPLE_RATE), min(n, int((t + dur) * SAMPLE_RATE))
            if b - a < 400:
                break
            step = song.melody[note % len(song.melody)]
            octave, degree = divmod(int(step), 7)
            f0[a:b] = singer.f0 * 2 ** ((SCALE[degree] + 12 * octave) / 12)
            vowel[a:b] = VOWELS[rng.integers(0, 5)] * singer.tract * singer.formant_jitter
            ramp = np.minimum(1, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / 480)
            amp[a:b] = ramp * rng.uniform(0.7, 1.0)
            t, note = t + dur, note + 1
        t += rng.uniform(0.4, 1.2)  # breath between phrases
    voiced = amp > 0
    time = np.arange(n) / SAMPLE_RATE
    vib = singer.vib_depth * np.sin(2 * np.pi * singer.vib_rate * time + rng.uniform(0, 6))
    drift = np.cumsum(rng.normal(0, singer.jitter, n)) * 0.02
    f = np.where(voiced, f0, singer.f0) * 2 ** ((vib + np.clip(drift, -0.5, 0.5)) / 12)
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    voice = np.zeros(n)
    for k in range(1, int(7800 / singer.f0 * 1.2)):
        fk = k * f
        gain = np.where(fk < 7800, _envelope(fk, vowel) / k ** singer.tilt, 0.0)
        voice += gain * np.sin(k * phase)
    noise = rng.normal(0, 1, n) * _envelope(np.full(n, 3000.0), vowel) * singer.breath
    out = (voice + noise) * amp
    return (0.3 * out / (np.abs(out).max() + 1e-9)).astype(np.float32), voiced


def accompany(song: Song, seconds: float, seed: int) -> np.ndarray:
    """Chords, bass and drums for `song` (the same for every singer of it)."""
    rng = np.random.default_rng([seed, 4, int(song.name[4:])])
    n = int(seconds * SAMPLE_RATE)
    time = np.arange(n) / SAMPLE_RATE
    beat = 60.0 / song.tempo
    bar = 4 * beat
    out = np.zeros(n)
    for i, start in enumerate(np.arange(0, seconds, bar)):
        a, b = int(start * SAMPLE_RATE), min(n, int((start + bar) * SAMPLE_RATE))
        tt = time[a:b] - start
        degree = int(song.chords[i % len(song.chords)])
        decay = np.exp(-tt / song.sustain)
        for third in (0, 2, 4):
            d = (degree + third) % 7
            freq = song.root * 2 ** (SCALE[d] / 12) * 2
            for h, w in enumerate(song.timbre, start=1):
                out[a:b] += 0.08 * w * decay * np.sin(2 * np.pi * freq * h * tt)
        bass = song.root * 2 ** (SCALE[degree] / 12) / 2
        out[a:b] += 0.25 * np.sin(2 * np.pi * bass * tt) * np.exp(-(tt % beat) / 0.4)
    for k, start in enumerate(np.arange(0, seconds, beat / 2)):
        a = int(start * SAMPLE_RATE)
        length = min(n - a, int(0.25 * SAMPLE_RATE))
        tt = np.arange(length) / SAMPLE_RATE
        if k % 4 == 0:  # kick
            out[a:a + length] += song.drums * 0.6 * np.sin(
                2 * np.pi * (50 + 100 * np.exp(-tt / 0.03)) * tt) * np.exp(-tt / 0.08)
        elif k % 4 == 2:  # snare
            out[a:a + length] += song.drums * 0.3 * rng.normal(0, 1, length) * np.exp(-tt / 0.05)
        hat = min(length, int(0.03 * SAMPLE_RATE))
        out[a:a + hat] += song.drums * 0.05 * np.diff(rng.normal(0, 1, hat + 1))
    return (0.4 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def activity_frames(voiced: np.ndarray) -> np.ndarray:
    """Per-sample mask -> 40 ms frames with a 20 ms hop, as MIR-1K's vocal-nonvocal files."""
    hop, win = int(ACTIVITY_HOP_S * SAMPLE_RATE), int(2 * ACTIVITY_HOP_S * SAMPLE_RATE)
    count = max(1, 1 + (len(voiced) - win) // hop)
    return np.array([voiced[i * hop:i * hop + win].mean() > 0.5 for i in range(count)])


def generate(out: Path, singers: int, songs: int, seconds: float = 8.0, seed: int = 0,
             progress=None) -> Path:
    """Write `singers` x `songs` tracks (stems, mixture, activity) and a manifest; returns it."""
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    voices = [make_singer(i, seed) for i in range(singers)]
    tunes = [make_song(j, seed) for j in range(songs)]
    backing = {s.name: accompany(s, seconds, seed) for s in tunes}
    rows = []
    pairs = [(v, s) for v in voices for s in tunes]
    for voice, tune in (progress(pairs) if progress else pairs):
        tid = f"{voice.name}_{tune.name}"
        vocals, voiced = sing(voice, tune, seconds, seed)
        acc = backing[tune.name]
        files = {"vocals": f"audio/{tid}_vocals.wav", "accompaniment": f"audio/{tid}_acc.wav",
                 "mixture": f"audio/{tid}_mix.wav", "vocal_activity": f"audio/{tid}.vocal"}
        sf.write(out / files["vocals"], vocals, SAMPLE_RATE, subtype="PCM_16")
        sf.write(out / files["accompaniment"], acc, SAMPLE_RATE, subtype="PCM_16")
        sf.write(out / files["mixture"], np.clip(vocals + acc, -1, 1), SAMPLE_RATE,
                 subtype="PCM_16")
        flags = activity_frames(voiced).astype(int)
        (out / files["vocal_activity"]).write_text("\n".join(map(str, flags)) + "\n")
        rows.append({"track_id": tid, "artist": voice.name, "gender": voice.gender,
                     "song": tune.name, "title": f"{tune.name} sung by {voice.name}", **files})
    manifest = out / "manifest.csv"
    write_manifest(manifest, rows)
    return manifest
