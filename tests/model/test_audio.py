import io
import time

import numpy as np
import pytest

from model.audio import decode as audio
from model.audio.encode import ENCODERS, encode

SR = 16_000


def tone(seconds: float = 2.0, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_round_trip_every_format(fmt: str) -> None:
    x = tone()
    decoded = audio.decode(encode(x, SR, fmt))
    y = decoded.samples
    assert decoded.sample_rate == SR and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) < 0.15 * SR  # codec padding/priming only (AAC: ~0.1 s)
    mid = y[SR // 2: SR // 2 + SR]
    assert abs(dominant_freq(mid) - 440.0) < 2.0
    rms = float(np.sqrt(np.mean(mid**2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_resamples_and_downmixes_stereo_44k() -> None:
    import av

    sr = 44_100
    left, right = tone(1.0, 440.0, sr), tone(1.0, 440.0, sr)
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([left, right]), format="fltp",
                                           layout="stereo")
        frame.sample_rate = sr
        for p in stream.encode(frame):
            out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    d = audio.decode(buf.getvalue())
    assert d.source_rate == sr and d.source_channels == 2
    assert abs(len(d.samples) - SR) < 200
    assert abs(dominant_freq(d.samples[1000:15000]) - 440.0) < 3.0


@pytest.mark.parametrize("decoder", audio.DECODERS)
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_U8", "FLOAT"])
def test_long_stereo_decodes_like_one_shot_resampling(subtype: str, decoder: str) -> None:
    """20 s at 44.1 kHz spans several resampling blocks: the output must be the channel mean
    resampled as one signal (no seams, no drift), whatever the sample format."""
    import soundfile as sf
    import torch
    import torchaudio

    sr, seconds = 44_100, 20.0
    left, right = tone(seconds, 300.0, sr), tone(seconds, 1_000.0, sr) * 0.5
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, right], axis=1), sr, format="WAV", subtype=subtype)
    decoded = audio.decode(buf.getvalue(), decoder=decoder)
    want = torchaudio.functional.resample(torch.from_numpy((left + right) / 2), sr, SR).numpy()
    assert len(decoded.samples) == len(want) == int(seconds * SR)
    tol = 2e-2 if subtype == "PCM_U8" else 2e-3  # 8-bit samples carry ~4e-3 of noise
    np.testing.assert_allclose(decoded.samples[100:-100], want[100:-100], atol=tol)


def test_path_and_file_object_sources(tmp_path) -> None:
    data = encode(tone(), SR, "flac")
    path = tmp_path / "x.flac"
    path.write_bytes(data)
    a = audio.load(path)
    b = audio.load(io.BytesIO(data))
    np.testing.assert_array_equal(a, b)


def _cases() -> dict[str, tuple[bytes, type[audio.AudioError]]]:
    wav = encode(tone(), SR, "wav")
    mp3 = encode(tone(), SR, "mp3")
    flac = encode(tone(), SR, "flac")
    corrupt = bytearray(mp3)
    rng = np.random.default_rng(0)
    idx = rng.integers(500, len(corrupt), 400)
    corrupt[500:] = bytes(rng.integers(0, 256, len(corrupt) - 500, dtype=np.uint8))
    del idx
    return {
        "zero-length": (b"", audio.EmptyAudioError),
        "non-audio": (b"<html>not audio</html>" * 50, audio.UnsupportedFormatError),
        "truncated-wav": (wav[: len(wav) // 3], audio.CorruptAudioError),
        "truncated-mp3": (mp3[: len(mp3) // 4], audio.AudioError),
        "truncated-flac": (flac[:100], audio.AudioError),
        "corrupt-mp3": (bytes(corrupt), audio.AudioError),
        "silent": (encode(np.zeros(SR, np.float32), SR, "wav"), audio.EmptyAudioError),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_bad_input_raises_typed_error_quickly(case: str) -> None:
    data, error = _cases()[case]
    start = time.perf_counter()
    with pytest.raises(error) as info:
        audio.decode(data)
    assert time.perf_counter() - start < 1.0
    assert info.value.code in {"unsupported_format", "corrupt_audio", "empty_audio", "too_long"}


def test_too_long_is_refused_before_decoding_it_all() -> None:
    data = encode(np.full(SR * 30, 0.1, np.float32), SR, "flac")
    start = time.perf_counter()
    with pytest.raises(audio.TooLongError):
        audio.decode(data, max_seconds=5)
    assert time.perf_counter() - start < 1.0


def test_silent_allowed_for_stems() -> None:
    data = encode(np.zeros(SR, np.float32), SR, "wav")
    assert audio.decode(data, allow_silent=True).duration == pytest.approx(1.0)
