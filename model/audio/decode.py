"""Decode any common audio file to mono float32 at 16 kHz, or fail with a typed error.

Everything that reaches the encoder goes through `decode`: training caches, the catalog job and
the HTTP service. PyAV (FFmpeg) does the demuxing, decoding and resampling straight to 16 kHz
(libswresample, a well-kept resampler), so a 44.1 kHz stereo MP3 never exists in memory at its
full size. Every failure is an `AudioError` subclass with a stable `code`, so the service can map
it to a 4xx without parsing messages, and the decoder never loops without a deadline.
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
#: Highest source sample rate accepted (studio formats stop at 768 kHz); found by fuzzing.
MAX_SOURCE_RATE = 768_000

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


class AudioError(ValueError):
    """Base class of decoding failures; `code` is stable and machine-readable."""

    code = "audio_error"


class UnsupportedFormatError(AudioError):
    """The bytes are not a container/codec we can read (or hold no audio stream)."""

    code = "unsupported_format"


class CorruptAudioError(AudioError):
    """The container was recognised but its data is damaged, truncated or non-finite."""

    code = "corrupt_audio"


class EmptyAudioError(AudioError):
    """Zero samples, or nothing above the silence floor."""

    code = "empty_audio"


class TooLongError(AudioError):
    """Longer than the caller's duration cap (checked before and while decoding)."""

    code = "too_long"


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


def _open(source: AudioSource) -> av.container.InputContainer:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise EmptyAudioError("the audio data is empty (0 bytes)")
        source = bytes(source)
        _check_riff(source[:65536], len(source))
        source = io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise UnsupportedFormatError(f"no such audio file: {path.name}")
        size = path.stat().st_size
        if size == 0:
            raise EmptyAudioError(f"the audio file is empty (0 bytes): {path.name}")
        with path.open("rb") as fh:
            _check_riff(fh.read(65536), size)
        source = str(path)
    else:
        return _open(source.read())
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
) -> DecodedAudio:
    """Decode `source` (path, bytes or binary file object) to mono float32 at 16 kHz.

    Raises an `AudioError` subclass for unsupported, corrupt, truncated, empty, silent (unless
    `allow_silent`, which training stems need) or too-long input. Decoding stops as soon as
    the duration cap is passed, so a tiny file declaring hours of audio costs almost nothing.
    """
    if av is None:  # pragma: no cover
        return _decode_soundfile(source, max_seconds, allow_silent)
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
        if source_rate > MAX_SOURCE_RATE:  # resampling from ~1 GHz takes libswresample ~10 s
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


#: Sample formats read straight from decoded frames (dtype, scale to [-1, 1), offset).
_SAMPLE_FORMATS = {
    "u8": (np.uint8, 1 / 128, -128.0), "s16": (np.int16, 1 / 32768, 0.0),
    "s32": (np.int32, 1 / 2**31, 0.0), "flt": (np.float32, 1.0, 0.0),
    "dbl": (np.float64, 1.0, 0.0),
}
#: Source samples (per channel) resampled per libswresample call: one call per ~8 s of audio
#: instead of one per codec frame (~1,000 for 30 s of MP3), where Python's per-call overhead
#: cost as much as the decoding itself.
_RESAMPLE_BLOCK = 1 << 17
#: PyAV reads planes past the 8th from a garbage pointer (a segfault on 9+ channel files,
#: found by fuzzing), so wider frames go through libswresample as one packed plane.
_MAX_PLANES = 8


def _frame_mono(frame: av.AudioFrame) -> np.ndarray:
    """A packed float frame, averaged over its channels."""
    channels = len(frame.layout.channels)
    return frame.to_ndarray().reshape(-1, channels).mean(axis=1, dtype=np.float32)


class _MonoStream:
    """Decoded frames -> mono float32 at 16 kHz, with Python's work per block, not per frame.

    Frames' samples are collected as they come (numpy views of their planes); every ~8 s of
    audio the block is downmixed at the source rate (numpy) and goes through one stateful
    libswresample resampler, so the output equals resampling the whole signal at once, with
    bounded memory. Per-frame conversion (a 30 s MP3 has 1,150 frames) had cost as much as the
    decoding itself.
    """

    def __init__(self) -> None:
        self.out: list[np.ndarray] = []
        self.raw: list[list[np.ndarray]] = []  # per frame: its planes' samples, one layout
        self.raw_key: tuple | None = None
        self.pending: list[np.ndarray] = []  # mono float32 at the source rate
        self.pending_n = 0
        self.rate = 0
        self.resampler: av.AudioResampler | None = None
        self.packer: av.AudioResampler | None = None
        self.total = 0  # output samples so far (pending ones counted at 16 kHz)

    def add(self, frame: av.AudioFrame) -> None:
        rate = int(frame.sample_rate or 0)
        if rate <= 0 or rate > MAX_SOURCE_RATE:
            raise CorruptAudioError(f"a decoded frame has a sample rate of {rate} Hz")
        if rate != self.rate:  # a stream may change rate mid-way: drain, then start afresh
            self.finish()
            self.rate, self.resampler = rate, None
        n = self._collect(frame)
        self.pending_n += n
        self.total += n * SAMPLE_RATE // rate
        if self.pending_n >= _RESAMPLE_BLOCK:
            self._flush()

    def _collect(self, frame: av.AudioFrame) -> int:
        """Keep the frame's samples (views of its planes); returns how many per channel."""
        fmt, planar = frame.format.name, frame.format.is_planar
        channels = len(frame.layout.channels)
        spec = _SAMPLE_FORMATS.get(fmt.rstrip("p"))
        if spec is None or channels == 0 or (planar and channels > _MAX_PLANES):
            self._downmix()
            if self.packer is None:
                self.packer = av.AudioResampler(format="flt")
            frame.pts = None
            mono = [_frame_mono(f) for f in self.packer.resample(frame)]
            self.pending.extend(mono)
            return sum(m.size for m in mono)
        key = (fmt, channels)
        if key != self.raw_key:
            self._downmix()
            self.raw_key = key
        # Straight from the planes: to_ndarray's vstack costs 4x more per frame.
        n, dtype = frame.samples, spec[0]
        try:
            if planar:
                self.raw.append([np.frombuffer(plane, dtype, n) for plane in frame.planes])
            else:
                self.raw.append([np.frombuffer(frame.planes[0], dtype, n * channels)])
        except ValueError as exc:  # a plane shorter than the frame claims
            raise CorruptAudioError("a decoded frame is shorter than it claims") from exc
        return n

    def _downmix(self) -> None:
        """Collected samples -> one mono float32 array (channel by channel: numpy's mean over
        a short axis with a dtype cast is ~10x slower)."""
        if not self.raw:
            return
        fmt, channels = self.raw_key
        _, scale, offset = _SAMPLE_FORMATS[fmt.rstrip("p")]
        if fmt.endswith("p"):  # planar: one array per channel
            planes = [np.concatenate([r[c] for r in self.raw]) for c in range(channels)]
        else:  # packed: interleaved samples
            planes = np.concatenate([r[0] for r in self.raw]).reshape(-1, channels).T
        self.raw = []
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite input: _validate
            mono = planes[0].astype(np.float32)
            for plane in planes[1:]:
                mono += plane
            if offset:
                mono += np.float32(offset * channels)
            mono *= np.float32(scale / channels)
        self.pending.append(mono)

    def _flush(self, final: bool = False) -> None:
        self._downmix()
        if not self.pending and not (final and self.resampler is not None):
            return
        block = np.concatenate(self.pending) if self.pending else np.zeros(0, np.float32)
        self.pending, self.pending_n = [], 0
        if self.rate == SAMPLE_RATE:
            self.out.append(block)
            return
        if self.resampler is None:
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frames = []
        if block.size:
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt",
                                               layout="mono")
            frame.sample_rate = self.rate
            frames = self.resampler.resample(frame)
        if final:
            frames = frames + self.resampler.resample(None)
        self.out.extend(f.to_ndarray().reshape(-1) for f in frames)

    def finish(self) -> None:
        """Resample what is pending and drain the resampler (end of stream or rate change)."""
        self._flush(final=True)
        self.resampler = None

    def samples(self) -> np.ndarray:
        self.finish()
        return np.concatenate(self.out) if self.out else np.zeros(0, dtype=np.float32)


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    max_seconds: float,
    deadline: float,
) -> np.ndarray:
    mono = _MonoStream()
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
