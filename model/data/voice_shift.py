"""More voices from the ones we have: speed-shifted copies of every isolated vocal stem.

A voice played faster or slower by a factor f moves its pitch *and* its formants (the vocal
tract's resonances) by f: to a listener, and to a speaker encoder, a 6-12% shift is another
person (speaker-recognition recipes use 0.9/1.1 "speed perturbation" to triple their speakers).
With 33 real voices the distilled student learns those 33 and generalises poorly; each factor
adds as many new voices, and the teacher labels them by listening to the shifted vocals, so no
label is invented. Training only: shifted copies never reach evaluation or the catalog.

A shifted copy is a vocals-only row of its own singer (`artist ~x1.06`), laid over other rows'
accompaniment like any isolated voice; `held_out_as` keeps it on its source singer's side of a
singer-disjoint split and `split_key` on its source track's side of a random one, so held-out
audio never trains in disguise.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from model.audio.resample import BlockResampler
from model.audio.signal import SAMPLE_RATE
from model.data.manifest import ManifestTrack

#: Outside this range a voice stops sounding human (chipmunk / slowed tape).
MIN_FACTOR, MAX_FACTOR = 0.7, 1.4


def check_factors(factors: list[float] | tuple[float, ...]) -> None:
    """Refuse factors that would not make a new, human-sounding voice."""
    for f in factors:
        if not MIN_FACTOR <= f <= MAX_FACTOR or f == 1.0:
            raise ValueError(f"voice shift {f} must lie in [{MIN_FACTOR}, {MAX_FACTOR}] and "
                             "differ from 1")
    if len(set(factors)) != len(factors):
        raise ValueError(f"voice shifts repeat a factor: {list(factors)}")


def shifted_tracks(tracks: list[ManifestTrack], factors: list[float] | tuple[float, ...]
                   ) -> list[ManifestTrack]:
    """One vocals-only copy per (row with vocals, factor), named for its factor."""
    check_factors(factors)
    out = []
    for t in tracks:
        if t.vocals is None:
            continue
        for f in factors:
            tag = f"~x{f:g}"
            out.append(dataclasses.replace(
                t, track_id=t.track_id + tag, artist=t.artist + tag,
                song=(t.song + tag) if t.song else "", accompaniment=None, mixture=None,
                vocal_activity=None, speed=float(f), source_artist=t.held_out_as,
                source_track=t.split_key))
    return out


def speed_shift(x: np.ndarray, factor: float) -> np.ndarray:
    """`x` (16 kHz) played `factor` times faster: read as if sampled at factor * 16 kHz and
    resampled to 16 kHz, so duration / factor and every frequency * factor. libswresample, the
    decoder's own resampler: it runs in the bank's decoding processes, where torch's thread
    pool (forked from a parent that used it) would deadlock."""
    ratio = Fraction(factor).limit_denominator(1000)
    source = SAMPLE_RATE * ratio.numerator // ratio.denominator
    if source * ratio.denominator != SAMPLE_RATE * ratio.numerator:
        raise ValueError(f"voice shift {factor} gives a fractional sample rate")
    return BlockResampler(source)(np.asarray(x, np.float32), last=True)
