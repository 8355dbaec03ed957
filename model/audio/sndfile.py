"""WAV, FLAC, AIFF and MP3 through libsndfile (PyPI `soundfile`): one C call per block of
65,536 frames instead of Python work per codec frame.

Why: FFmpeg through PyAV hands Python one frame per 1,152 MP3 samples, and reading, downmixing
and resampling those ~1,150 frames of a 30 s song cost as much again as FFmpeg's decoding
(docs/benchmarks.md, "Issue 14"). libsndfile 1.2 decodes MP3 with libmpg123 in one call per block,
12.3 ms against FFmpeg's 14.0 ms for a 30 s 44.1 kHz stereo file on the same CPU, with samples
equal to FFmpeg's to 2e-6 (WAV and FLAC are lossless: equal exactly). Other formats, and any
file libsndfile refuses or fails on, go through FFmpeg (model/audio/decode.py), which also
names what is wrong with a broken file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from model.audio.errors import TooLongError
from model.audio.resample import MAX_SOURCE_RATE, BlockResampler
from model.audio.signal import SAMPLE_RATE

#: libsndfile major formats read here; OGG (Vorbis, Opus) is slower in libsndfile than in
#: FFmpeg (7.9 against 6.2 ms for 30 s), so it stays with FFmpeg.
FAST_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "AIFF", "MP3"})
BLOCK_FRAMES = 1 << 16
#: With `threads` > 1, files of known length at least this long are decoded in parts at once.
MIN_SPLIT_SECONDS = 8.0
#: Source frames read past each cut on both sides (rounded up to the resampling period):
#: libswresample's filter reaches ~90 frames a side at 44.1 kHz.
_MARGIN = 2048
#: libsndfile's frame count when a stream does not say (SF_COUNT_MAX).
_UNKNOWN_FRAMES = 1 << 62


@dataclass(frozen=True)
class Decoded:
    """16 kHz mono samples plus what the file said about itself."""

    samples: np.ndarray
    declared_seconds: float
    source_rate: int
    channels: int
    codec: str


def _open(source: str | io.BytesIO) -> sf.SoundFile | None:
    try:
        handle = sf.SoundFile(source)
    except Exception:  # noqa: BLE001 - anything libsndfile cannot open goes to FFmpeg
        return None
    if (handle.format in FAST_FORMATS and 0 < handle.samplerate <= MAX_SOURCE_RATE
            and handle.channels > 0):
        return handle
    handle.close()
    return None


def decode(source: str | io.BytesIO, max_seconds: float, threads: int = 1) -> Decoded | None:
    """Decode to 16 kHz mono, or None when libsndfile should not or could not read the file
    (the caller then uses FFmpeg). Raises `TooLongError` past `max_seconds`. With `threads`
    > 1, a file of known length >= 8 s is decoded as that many parts at once (`_read_split`)."""
    with _as_file(source) as readable:
        return _decode(readable, max_seconds, threads)


@contextmanager
def _as_file(source: str | io.BytesIO) -> Iterator[str | io.BytesIO]:
    """In-memory audio as a path libsndfile reads by itself (an anonymous memory file), else
    `source` as it is. Why: libsndfile reads a BytesIO through Python callbacks, which need the
    GIL, so the parts of a split decode queued behind each other: two halves of a 30 s MP3 took
    14.5 ms at once from BytesIO against 9.1 ms from a file on the 2-core AMD EPYC."""
    if not isinstance(source, io.BytesIO) or not hasattr(os, "memfd_create"):
        yield source
        return
    try:
        fd = os.memfd_create("cvsm-audio", os.MFD_CLOEXEC)
    except OSError:  # no memfd (old kernel, sandbox): the callbacks still work
        yield source
        return
    try:
        with source.getbuffer() as view:
            done = 0
            while done < len(view):  # os.write may write less than asked (large files)
                done += os.write(fd, view[done:])
        path = f"/proc/self/fd/{fd}"
        yield path if os.path.exists(path) else source
    finally:
        os.close(fd)


def _decode(source: str | io.BytesIO, max_seconds: float, threads: int) -> Decoded | None:
    handle = _open(source)
    if handle is None:
        return None
    with handle:
        rate, channels = handle.samplerate, handle.channels
        frames = handle.frames if 0 < handle.frames < _UNKNOWN_FRAMES else 0
        declared = frames / rate
        if declared > max_seconds * 1.05 + 1:
            raise TooLongError(f"audio is {declared:.0f} s long; the limit is {max_seconds:.0f} s")
        try:
            split = threads > 1 and frames >= MIN_SPLIT_SECONDS * rate and handle.seekable()
            samples = _read_split(source, handle, max_seconds, threads) if split else None
            if samples is None:
                handle.seek(0)
                samples = _read(handle, max_seconds, BlockResampler(rate))
        except TooLongError:
            raise
        except Exception:  # noqa: BLE001 - a decoding error mid-file: FFmpeg says what it is
            return None
        codec = f"{handle.format}/{handle.subtype}".lower()
    return Decoded(samples, declared, rate, channels, codec)


def _mono(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) float32, contiguous: the channel mean (one matrix-vector product)."""
    block = frames[:, 0] if len(weights) == 1 else frames @ weights
    return np.ascontiguousarray(block, np.float32)


def _read(handle: sf.SoundFile, max_seconds: float, resample: BlockResampler) -> np.ndarray:
    """Block by block, memory bounded: this thread decodes block k + 1 while a second one
    downmixes (a matrix-vector product) and resamples block k. libsndfile runs without the GIL,
    so the two overlap on two cores and mostly only the last block's resampling follows the
    decoding (docs/benchmarks.md, "Issue 14")."""
    cap = int(max_seconds * handle.samplerate)
    weights = np.full(handle.channels, 1 / handle.channels, np.float32)

    def mono(frames: np.ndarray, last: bool = False) -> np.ndarray:
        return resample(_mono(frames, weights), last)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cvsm-resample") as pool:
        futures, total = [], 0
        try:
            while len(frames := handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
                total += len(frames)
                if total > cap:
                    raise TooLongError(f"audio is longer than the limit of {max_seconds:.0f} s")
                futures.append(pool.submit(mono, frames))  # one worker: blocks stay in order
            futures.append(pool.submit(mono, np.zeros((0, handle.channels), np.float32), True))
            return np.concatenate([f.result() for f in futures])
        finally:
            for f in futures:
                f.cancel()


@dataclass(frozen=True)
class _Part:
    """Source frames [lo, hi) read, [start, stop) kept (None: to the end of the file)."""

    lo: int
    start: int
    stop: int | None
    hi: int | None


def _plan(frames: int, rate: int, parts: int) -> list[_Part]:
    """Cut points on multiples of the resampling period (441 frames at 44.1 kHz), so a part's
    first kept output sample falls on the whole signal's output grid; each part also reads a
    margin on both sides, so the resampler's filter sees what it would have seen in one pass."""
    step = rate // math.gcd(rate, SAMPLE_RATE)
    pad = step * math.ceil(_MARGIN / step)
    cuts: list[int | None] = [frames * i // parts // step * step for i in range(parts)]
    cuts.append(None)
    return [_Part(max(0, a - pad), a, b, None if b is None else b + pad)
            for a, b in zip(cuts, cuts[1:], strict=False)]


class _ShortPart(Exception):
    """A part held fewer frames than the header promised (the file is cut short)."""


def _read_part(reopen: Callable[[], sf.SoundFile], part: _Part, cap: int) -> np.ndarray:
    """One part through its own libsndfile handle and resampler; its kept 16 kHz samples."""
    with reopen() as handle:
        rate = handle.samplerate
        weights = np.full(handle.channels, 1 / handle.channels, np.float32)
        resample, out, pos = BlockResampler(rate), [], part.lo
        handle.seek(part.lo)
        while part.hi is None or pos < part.hi:
            want = BLOCK_FRAMES if part.hi is None else min(BLOCK_FRAMES, part.hi - pos)
            frames = handle.read(want, dtype="float32", always_2d=True)
            if not len(frames):
                break
            pos += len(frames)
            if pos > cap:
                raise TooLongError(f"audio is longer than the limit of {cap // rate} s")
            out.append(resample(_mono(frames, weights)))
        out.append(resample(np.zeros(0, np.float32), last=True))
    samples = np.concatenate(out)
    skip = (part.start - part.lo) * SAMPLE_RATE // rate
    if part.stop is None:
        return samples[skip:]
    keep = (part.stop - part.start) * SAMPLE_RATE // rate
    if len(samples) < skip + keep:
        raise _ShortPart
    return samples[skip:skip + keep]


def _read_split(source: str | io.BytesIO, handle: sf.SoundFile, max_seconds: float,
                parts: int) -> np.ndarray | None:
    """Decode `parts` stretches of the file at once, one thread and one handle each: libsndfile
    seeks to the exact frame (its MP3 decoder warms up from the frames before) and runs without
    the GIL, so on 2 cores a 30 s MP3 decodes in ~0.6x the time of one pass, with the same
    samples (tests/model/test_audio_paths.py). None when a part comes up short (a file cut
    short): the caller then reads it in one pass, which reports the truncation."""
    data = source.getvalue() if isinstance(source, io.BytesIO) else None

    def reopen() -> sf.SoundFile:
        return sf.SoundFile(io.BytesIO(data) if data is not None else source)

    plan = _plan(handle.frames, handle.samplerate, parts)
    cap = int(max_seconds * handle.samplerate)
    with ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="cvsm-decode") as pool:
        later = [pool.submit(_read_part, reopen, part, cap) for part in plan[1:]]
        try:
            pieces = [_read_part(reopen, plan[0], cap)] + [f.result() for f in later]
        except _ShortPart:
            return None
    return np.concatenate(pieces)
