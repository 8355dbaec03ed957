"""The fast decoding path (libsndfile) against the earlier one (FFmpeg), both resampled by
libswresample."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import decode as audio
from model.audio import swr
from model.audio.encode import encode
from model.audio.resample import BlockResampler
from model.data.synth import accompany, make_singer, make_song, sing
from model.inference.embedder import Embedder


def song(seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    vocals, _ = sing(make_singer(seed, 1), make_song(seed, 1), seconds, seed)
    mix = vocals + accompany(make_song(seed, 1), seconds, seed)
    return (mix / np.abs(mix).max() * 0.9).astype(np.float32)


@pytest.mark.parametrize(("fmt", "codec"), [("wav", "wav/"), ("flac", "flac/"), ("mp3", "mp3/"),
                                            ("ogg", "vorbis"), ("m4a", "aac")])
def test_libsndfile_reads_wav_flac_mp3_and_ffmpeg_the_rest(fmt: str, codec: str) -> None:
    decoded = audio.decode(encode(song(3.0), 16_000, fmt))
    assert decoded.codec.startswith(codec)
    assert audio.decode(encode(song(3.0), 16_000, fmt), decoder="ffmpeg").codec[:3] != "mp3/"


def test_fast_path_embeds_like_the_earlier_one(embedder: Embedder) -> None:
    """A 44.1 kHz stereo MP3 (a typical music file): same length, samples within the two MP3
    decoders' rounding, embeddings at cosine >= 0.9999 (the issue's bar)."""
    tracks = [encode(song(12.0, seed), 16_000, "mp3", bit_rate=128_000, channels=2,
                     out_rate=44_100) for seed in range(3)]
    for data in tracks:
        new = audio.decode(data)
        old = audio.decode(data, decoder="ffmpeg")
        assert new.codec.startswith("mp3/") and new.source_rate == 44_100
        assert len(new.samples) == len(old.samples)
        assert np.abs(new.samples - old.samples).max() < 1e-4  # libmpg123 vs FFmpeg's MP3
        a, b = embedder.embed_waveform(new.samples), embedder.embed_waveform(old.samples)
        assert float(a @ b) >= 0.9999


def test_block_resampling_equals_resampling_at_once() -> None:
    x44 = np.tile(song(6.0), 3)  # any signal, read as 44.1 kHz
    whole = BlockResampler(44_100)(x44, last=True)
    blocks = BlockResampler(44_100)
    cuts = [0, 1_000, 5_003, 70_000, len(x44)]
    pieces = [blocks(x44[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    pieces.append(blocks(np.zeros(0, np.float32), last=True))
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-6)


@pytest.mark.skipif(not swr.available(), reason="PyAV's libswresample could not be bound")
@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 16_960])
def test_direct_libswresample_equals_pyav(rate: int) -> None:
    """The ctypes binding (no GIL) gives PyAV's samples exactly, block by block and at once."""
    x = np.tile(song(3.0), 4)  # any signal, read as `rate`
    cuts = [0, 777, 40_000, 65_536 + 40_000, len(x)]
    outs = []
    for direct in (True, False):
        r = BlockResampler(rate, direct=direct)
        pieces = [r(x[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
        outs.append(np.concatenate(pieces + [r(np.zeros(0, np.float32), last=True)]))
    assert outs[0].dtype == np.float32 and len(outs[0]) == len(outs[1])
    np.testing.assert_array_equal(outs[0], outs[1])
    whole = BlockResampler(rate, direct=True)(x, last=True)
    np.testing.assert_array_equal(whole, outs[1])


def test_unknown_decoder_is_refused() -> None:
    data = encode(song(1.0), 16_000, "wav")
    with pytest.raises(ValueError, match="decoder"):
        audio.decode(data, decoder="gstreamer")


def test_fast_path_caps_duration() -> None:
    data = encode(song(8.0), 16_000, "flac")
    with pytest.raises(audio.TooLongError):
        audio.decode(data, max_seconds=3.0)


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 44_100), ("flac", 16_000), ("wav", 22_050),
                                           ("mp3", 48_000)])
@pytest.mark.parametrize("threads", [2, 3])
def test_decoding_in_parts_gives_the_same_samples(fmt: str, rate: int, threads: int) -> None:
    """libsndfile seeks to the exact frame and the parts' resamplers read a margin past each
    cut on the resampling grid, so the parts join without a seam."""
    kwargs = {"out_rate": rate, "channels": 2} if rate != 16_000 else {}
    data = encode(song(21.0, 5), 16_000, fmt, **kwargs)
    one = audio.decode(data).samples
    parts = audio.decode(data, threads=threads).samples
    assert len(parts) == len(one)
    np.testing.assert_allclose(parts, one, atol=1e-6)


def test_parts_of_a_cut_short_file_still_report_it() -> None:
    data = encode(song(21.0, 6), 16_000, "mp3", channels=2, out_rate=44_100)
    with pytest.raises(audio.CorruptAudioError, match="truncated"):
        audio.decode(data[: len(data) // 2], threads=2)


def test_parts_from_a_path(tmp_path) -> None:
    path = tmp_path / "song.flac"
    path.write_bytes(encode(song(12.0, 7), 16_000, "flac", out_rate=44_100))
    np.testing.assert_allclose(audio.decode(path, threads=2).samples, audio.decode(path).samples,
                               atol=1e-6)


def test_in_memory_audio_is_read_as_a_file_with_the_same_samples() -> None:
    """Uploads reach libsndfile as an anonymous memory file (no Python read callbacks, so
    split parts decode at once), closed afterwards, with the samples of the BytesIO path."""
    import io
    import os

    from model.audio import sndfile

    data = encode(song(10.0, 8), 16_000, "mp3", channels=2, out_rate=44_100)
    with sndfile._as_file(io.BytesIO(data)) as readable:
        if not hasattr(os, "memfd_create"):
            pytest.skip("no memfd_create on this system")
        assert isinstance(readable, str) and os.path.exists(readable)
        via_file = sndfile._decode(readable, 600.0, 2).samples
    assert not os.path.exists(readable)  # the descriptor is closed
    via_callbacks = sndfile._decode(io.BytesIO(data), 600.0, 2).samples
    np.testing.assert_array_equal(via_file, via_callbacks)
