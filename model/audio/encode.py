"""Encode mono float samples to common formats (tests, demos, benchmarks, synthetic catalogs):
the inverse of `model.audio.decode`, so a test can feed the decoder every format it claims."""

from __future__ import annotations

import io

import av
import numpy as np
import soundfile as sf

#: Container formats `encode` can write, keyed by file extension: (format, codec).
ENCODERS: dict[str, tuple[str, str]] = {
    "wav": ("wav", "pcm_s16le"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "vorbis"),  # via libsndfile: FFmpeg's Vorbis encoder is experimental
    "opus": ("ogg", "libopus"),
    "mp3": ("mp3", "libmp3lame"),
    "m4a": ("ipod", "aac"),
}


def encode(samples: np.ndarray, sample_rate: int, fmt: str, bit_rate: int | None = None,
           channels: int = 1, out_rate: int | None = None) -> bytes:
    """Encode mono float samples in one of `ENCODERS`' formats (tests, demos, synth output);
    `channels=2` writes them as (identical) stereo and `out_rate` resamples them (libswresample;
    not for Vorbis), e.g. to 44.1 kHz: the layout of a typical music file."""
    container_fmt, codec = ENCODERS[fmt]
    buf = io.BytesIO()
    data = np.repeat(np.clip(samples, -1, 1).astype(np.float32)[None, :], channels, axis=0)
    if codec == "vorbis":
        sf.write(buf, data.T, sample_rate, format="OGG", subtype="VORBIS")
        return buf.getvalue()
    rate = 48_000 if codec == "libopus" else out_rate or sample_rate
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=rate)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
