"""Decoded FFmpeg frames -> mono float32 at 16 kHz, with Python's work per block, not per frame.

model/audio/decode.py feeds every frame PyAV decodes to a `MonoStream`; the stream keeps numpy
views of the frame's planes (~2.5 us a frame) and every ~3 s of audio downmixes the block and
feeds one stateful resampler (model/audio/resample.py), so the output equals resampling the
whole signal at once and memory stays bounded. (A second thread for the resampling was tried:
PyAV holds the GIL while FFmpeg decodes, so the thread waited for it and nothing overlapped.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from model.audio.errors import CorruptAudioError
from model.audio.resample import MAX_SOURCE_RATE, BlockResampler
from model.audio.signal import SAMPLE_RATE

if TYPE_CHECKING:
    import av

#: Sample formats read straight from decoded frames (dtype, scale to [-1, 1), offset).
_SAMPLE_FORMATS = {
    "u8": (np.uint8, 1 / 128, -128.0), "s16": (np.int16, 1 / 32768, 0.0),
    "s32": (np.int32, 1 / 2**31, 0.0), "flt": (np.float32, 1.0, 0.0),
    "dbl": (np.float64, 1.0, 0.0),
}
#: Source samples (per channel) resampled per call: one call per ~3 s of audio instead of one
#: per codec frame (~1,150 for 30 s of MP3), where Python's per-call overhead cost as much as
#: the decoding itself.
_RESAMPLE_BLOCK = 1 << 17
#: PyAV reads planes past the 8th from a garbage pointer (a segfault on 9+ channel files,
#: found by fuzzing), so wider frames go through libswresample as one packed plane.
_MAX_PLANES = 8


def _frame_mono(frame: av.AudioFrame) -> np.ndarray:
    """A packed float frame, averaged over its channels."""
    channels = len(frame.layout.channels)
    return frame.to_ndarray().reshape(-1, channels).mean(axis=1, dtype=np.float32)


def _downmix(raw: list[list[np.ndarray]], key: tuple[str, int]) -> np.ndarray:
    """Frames' plane samples (one format and layout) -> one mono float32 array, channel by
    channel (numpy's mean over a short axis with a dtype cast is ~10x slower)."""
    fmt, channels = key
    _, scale, offset = _SAMPLE_FORMATS[fmt.rstrip("p")]
    if fmt.endswith("p"):  # planar: one array per channel
        planes = [np.concatenate([r[c] for r in raw]) for c in range(channels)]
    else:  # packed: interleaved samples
        planes = np.concatenate([r[0] for r in raw]).reshape(-1, channels).T
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite input: _validate
        mono = planes[0].astype(np.float32)
        for plane in planes[1:]:
            mono += plane
        if offset:
            mono += np.float32(offset * channels)
        mono *= np.float32(scale / channels)
    return mono


def _resample_block(parts: list, resampler: BlockResampler, last: bool) -> np.ndarray:
    """Downmix a block's parts, then resample them in order."""
    monos = [part if isinstance(part, np.ndarray) else _downmix(*part) for part in parts]
    block = np.concatenate(monos) if monos else np.zeros(0, np.float32)
    return resampler(block, last)


class MonoStream:
    """Frames in (`add`), 16 kHz mono out (`samples`); `total` is what the duration cap reads."""

    def __init__(self) -> None:
        self.out: list[np.ndarray] = []
        self.parts: list = []  # per run of frames: (raw planes, key) or mono float32
        self.raw: list[list[np.ndarray]] = []  # per frame: its planes' samples, one layout
        self.raw_key: tuple | None = None
        self.pending_n = 0
        self.rate = 0
        self.resampler: BlockResampler | None = None
        self.packer: av.AudioResampler | None = None
        self.dtype: type | None = None  # how the current run's planes are read (None: packer)
        self.planar = False
        self.done = 0  # output samples of the blocks already handed over

    @property
    def total(self) -> int:
        """Output samples so far (the pending ones counted at 16 kHz): the duration cap."""
        return self.done + (self.pending_n * SAMPLE_RATE // self.rate if self.rate else 0)

    def add(self, frame: av.AudioFrame) -> None:
        """Keep one frame's samples. The per-frame path is a handful of attribute reads and two
        `frombuffer` views (~2.5 us): at ~1,150 frames per 30 s of MP3, each microsecond here
        is 4% of FFmpeg's own decoding time."""
        rate = frame.sample_rate
        if rate != self.rate:  # a stream may change rate mid-way: drain, then start afresh
            self._start_rate(int(rate or 0))
        key = (frame.format.name, frame.layout.nb_channels)
        if key != self.raw_key:
            self._start_run(frame, key)
        if self.dtype is None:  # a format or layout the planes cannot be read for
            n = self._pack(frame)
        elif self.planar:
            n, dtype = frame.samples, self.dtype
            try:
                self.raw.append([np.frombuffer(p, dtype, n) for p in frame.planes])
            except ValueError as exc:  # a plane shorter than the frame claims
                raise CorruptAudioError("a decoded frame is shorter than it claims") from exc
        else:
            n = frame.samples
            try:
                self.raw.append([np.frombuffer(frame.planes[0], self.dtype, n * key[1])])
            except ValueError as exc:
                raise CorruptAudioError("a decoded frame is shorter than it claims") from exc
        self.pending_n += n
        if self.pending_n >= _RESAMPLE_BLOCK:
            self._flush()

    def _start_rate(self, rate: int) -> None:
        if rate <= 0 or rate > MAX_SOURCE_RATE:
            raise CorruptAudioError(f"a decoded frame has a sample rate of {rate} Hz")
        self.finish()
        self.rate, self.resampler = rate, BlockResampler(rate)

    def _start_run(self, frame: av.AudioFrame, key: tuple[str, int]) -> None:
        """A new sample format or channel layout: close the run and decide how to read it."""
        self._close_run()
        self.raw_key = key
        fmt, channels = key
        spec = _SAMPLE_FORMATS.get(fmt.rstrip("p"))
        self.planar = frame.format.is_planar
        readable = spec is not None and channels > 0 and not (self.planar
                                                              and channels > _MAX_PLANES)
        self.dtype = spec[0] if readable else None

    def _pack(self, frame: av.AudioFrame) -> int:
        """Odd formats and very wide layouts: libswresample packs the frame to float first."""
        if self.packer is None:
            import av

            self.packer = av.AudioResampler(format="flt")
        frame.pts = None
        mono = [_frame_mono(f) for f in self.packer.resample(frame)]
        self.parts.extend(mono)
        return sum(m.size for m in mono)

    def _close_run(self) -> None:
        """The frames collected so far (one format and layout) become one part of the block."""
        if self.raw:
            self.parts.append((self.raw, self.raw_key))
            self.raw = []

    def _flush(self, final: bool = False) -> None:
        self._close_run()
        if self.rate:
            self.done += self.pending_n * SAMPLE_RATE // self.rate
        if self.resampler is not None and (self.parts or final):
            self.out.append(_resample_block(self.parts, self.resampler, final))
        self.parts, self.pending_n = [], 0

    def finish(self) -> None:
        """Resample what is pending and drain the resampler (end of stream or rate change)."""
        self._flush(final=True)
        self.resampler = None

    def samples(self) -> np.ndarray:
        self.finish()
        out = [block for block in self.out if block.size]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
