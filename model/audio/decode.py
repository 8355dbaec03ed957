"""Decode any common audio file to mono float32 at 16 kHz, or fail with a typed error.

Everything that reaches the encoder goes through `decode`: training caches, the catalog job and
the HTTP service. PyAV (FFmpeg) demuxes and decodes; model/audio/mono.py downmixes and
resamples to 16 kHz block by block (libswresample), so a 44.1 kHz stereo MP3 never
exists in memory at its full size and costs little more than FFmpeg's own decoding. Every failure
is an `AudioError` subclass (model/audio/errors.py, re-exported here) with a stable `code`, so
the service can map it to a 4xx without parsing messages, and the decoder never loops without a
deadline.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from model.audio import sndfile
from model.audio.errors import (
    AudioError,  # noqa: F401 - re-exported: callers catch decode's errors from here
    CorruptAudioError,
    EmptyAudioError,
    TooLongError,
    UnsupportedFormatError,
)
from model.audio.mono import MonoStream
from model.audio.resample import MAX_SOURCE_RATE
from model.audio.signal import SAMPLE_RATE

try:  # PyAV (FFmpeg) is the decoder; libsndfile is the fallback where no PyAV wheel exists.
    import av
except ImportError:  # pragma: no cover - exercised on machines without PyAV only
    av = None

#: File suffixes read as audio: folder scans of a catalog, and the suffix kept on an upload.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm",
                              ".aif", ".aiff"})
DEFAULT_MAX_SECONDS = 600.0
DEFAULT_TIMEOUT_S = 20.0
SILENCE_PEAK = 1e-4
#: Decoded duration below this share of the declared duration means the file was cut short.
TRUNCATION_TOLERANCE = 0.9

#: "auto": libsndfile where it is faster (WAV, FLAC, AIFF, MP3), FFmpeg otherwise.
DECODERS = ("auto", "ffmpeg")

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at `sample_rate` plus what the container said about the source."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _check_riff(head: bytes, size: int) -> None:
    """FFmpeg silently plays a cut-off WAV; compare its data chunk's declared size to the file."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"data":
            available = size - (pos + 8)
            if length not in (0, 0xFFFFFFFF) and available < TRUNCATION_TOLERANCE * length:
                raise CorruptAudioError(
                    f"the WAV file is truncated: {available} of {length} data bytes present")
            return
        pos += 8 + length + (length & 1)


def _prepare(source: AudioSource) -> str | io.BytesIO:
    """A path or an in-memory file both decoders can read; empty, missing and cut-off WAV
    sources are refused here, before either decoder sees them."""
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise EmptyAudioError("the audio data is empty (0 bytes)")
        source = bytes(source)
        _check_riff(source[:65536], len(source))
        return io.BytesIO(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise UnsupportedFormatError(f"no such audio file: {path.name}")
        size = path.stat().st_size
        if size == 0:
            raise EmptyAudioError(f"the audio file is empty (0 bytes): {path.name}")
        with path.open("rb") as fh:
            _check_riff(fh.read(65536), size)
        return str(path)
    return _prepare(source.read())


def _open(source: str | io.BytesIO) -> av.container.InputContainer:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        return av.open(source, mode="r", options={"probesize": "5000000"}, timeout=10.0)
    except av.error.InvalidDataError as exc:
        raise UnsupportedFormatError("not a recognised audio format") from exc
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        raise UnsupportedFormatError(f"cannot open the audio data ({type(exc).__name__})") from exc


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """The duration the container claims, or 0 when it does not say."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return 0.0


def decode(
    source: AudioSource,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    allow_silent: bool = False,
    decoder: str = "auto",
    threads: int = 1,
) -> DecodedAudio:
    """Decode `source` (path, bytes or binary file object) to mono float32 at 16 kHz.

    Raises an `AudioError` subclass for unsupported, corrupt, truncated, empty, silent (unless
    `allow_silent`, which training stems need) or too-long input. Decoding stops as soon as
    the duration cap is passed, so a tiny file declaring hours of audio costs almost nothing.
    `decoder` "auto" reads WAV, FLAC, AIFF and MP3 with libsndfile (model/audio/sndfile.py)
    and everything else, or whatever libsndfile fails on, with FFmpeg; "ffmpeg" always uses
    FFmpeg, the earlier path, kept as the reference (docs/benchmarks.md). Both resample with
    libswresample (model/audio/resample.py). `threads` > 1 lets libsndfile decode a long file
    in that many parts at once (a query on an otherwise idle machine; the catalog job decodes
    several files in parallel instead). `timeout_s` bounds FFmpeg, which can loop on crafted
    input; libsndfile's work is bounded by the file's size.
    """
    if av is None:  # pragma: no cover
        return _decode_soundfile(source, max_seconds, allow_silent)
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
    prepared = _prepare(source)
    if decoder == "auto":
        fast = sndfile.decode(prepared, max_seconds, threads)
        if fast is not None:
            return _validate(fast.samples, fast.declared_seconds, fast.source_rate,
                             fast.channels, fast.codec, allow_silent)
    return _decode_ffmpeg(prepared, max_seconds, timeout_s, allow_silent)


def _decode_ffmpeg(source: str | io.BytesIO, max_seconds: float, timeout_s: float,
                   allow_silent: bool) -> DecodedAudio:
    deadline = time.monotonic() + timeout_s
    container = _open(source)
    try:
        streams = container.streams.audio
        if not streams:
            raise UnsupportedFormatError("the file holds no audio stream")
        stream = streams[0]
        if stream.codec_context is None or not stream.codec_context.channels:
            raise UnsupportedFormatError("the audio stream has no channels")
        source_rate = int(stream.codec_context.sample_rate or 0)
        if source_rate > MAX_SOURCE_RATE:
            raise UnsupportedFormatError(f"a sample rate of {source_rate} Hz is not supported")
        channels = int(stream.codec_context.channels)
        codec = stream.codec_context.name
        declared = _declared_seconds(container, stream)
        if declared > max_seconds * 1.05 + 1:
            raise TooLongError(f"audio is {declared:.0f} s long; the limit is {max_seconds:.0f} s")
        samples = _decode_stream(container, stream, max_seconds, deadline)
    except av.FFmpegError as exc:
        raise CorruptAudioError(f"the audio data is damaged ({exc.__class__.__name__})") from exc
    finally:
        container.close()
    return _validate(samples, declared, source_rate, channels, codec, allow_silent)


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    max_seconds: float,
    deadline: float,
) -> np.ndarray:
    mono = MonoStream()
    cap = int(max_seconds * SAMPLE_RATE)
    errors = 0
    for packet in container.demux(stream):
        if time.monotonic() > deadline:
            raise CorruptAudioError("decoding took too long; the file looks malformed")
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            errors += 1
            if errors > 50:
                raise
            continue
        for frame in decoded:
            mono.add(frame)
        if mono.total > cap:
            raise TooLongError(f"audio is longer than the limit of {max_seconds:.0f} s")
    return mono.samples()


def _validate(
    samples: np.ndarray,
    declared: float,
    source_rate: int,
    channels: int,
    codec: str,
    allow_silent: bool,
) -> DecodedAudio:
    if samples.size == 0:
        raise EmptyAudioError("the file decodes to no audio samples")
    if not np.isfinite(samples).all():
        raise CorruptAudioError("the audio holds NaN or infinite samples")
    seconds = samples.size / SAMPLE_RATE
    if declared > 0.5 and seconds < TRUNCATION_TOLERANCE * declared:
        raise CorruptAudioError(
            f"the file is truncated: {seconds:.2f} s decoded of {declared:.2f} s declared"
        )
    if not allow_silent and float(np.abs(samples).max()) < SILENCE_PEAK:
        raise EmptyAudioError("the audio is silent")
    return DecodedAudio(samples.astype(np.float32, copy=False), SAMPLE_RATE, source_rate, channels,
                        codec)


def _decode_soundfile(source: AudioSource, max_seconds: float,
                      allow_silent: bool) -> DecodedAudio:  # pragma: no cover
    """libsndfile path (WAV, FLAC, OGG/Vorbis/Opus, MP3) + torchaudio resampling."""
    import torch
    import torchaudio

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        info = sf.info(source)
        if info.duration > max_seconds * 1.05 + 1:
            raise TooLongError(f"audio is {info.duration:.0f} s long; the limit is "
                               f"{max_seconds:.0f} s")
        if hasattr(source, "seek"):
            source.seek(0)
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise UnsupportedFormatError(f"cannot read the audio data: {exc}") from exc
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE and mono.size:
        mono = torchaudio.functional.resample(torch.from_numpy(mono), rate, SAMPLE_RATE).numpy()
    return _validate(mono, info.duration, rate, info.channels, info.format, allow_silent)


def load(source: AudioSource, **kwargs) -> np.ndarray:
    """Shorthand for `decode(...).samples`."""
    return decode(source, **kwargs).samples
