"""Fuzzing the decoder and the upload routes with random and mutated audio (hypothesis).

Every case must end in decoded audio or a typed `AudioError` (HTTP: the documented 413/415/422),
within a bounded time and memory: no crash (a segfault would take the whole server down), no
hang, no 500. The CI setting runs a few hundred cases; `-m slow` runs thousands.
"""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.audio.decode import AudioError, decode
from tests.reliability.harness import (
    SR,
    UPLOAD_ERRORS,
    peak_rss_mb,
    random_audio,
    record_figures,
    seed_files,
    seeded_server,
    sf_bytes,
    tone,
)
from tests.service_fixtures import assert_error

SEEDS = seed_files()
#: Wall-clock bound of one decode / one request (the decoder's own deadline is 20 s).
DECODE_BOUND_S = 10.0
MAX_SECONDS = 30.0
#: How much the process's peak RSS may grow over a whole fuzz run.
RSS_GROWTH_MB = 600
ROUTES = st.sampled_from(["/v1/search", "/v1/tracks"])


def _flac_silence(seconds: float, rate: int = 8_000, declare: bool = True) -> bytes:
    """FLAC of digital silence: hours compress to a few hundred KB. With `declare=False` the
    STREAMINFO total-samples field is zeroed (an "unknown length" stream)."""
    data = bytearray(sf_bytes(np.zeros(int(seconds * rate), np.int16), rate, "FLAC"))
    if not declare:  # 36-bit total samples: low nibble of byte 21, bytes 22-25
        data[21] &= 0xF0
        data[22:26] = b"\0\0\0\0"
    return bytes(data)


def _wav_field(offset: int, value: int, size: int = 4) -> bytes:
    data = bytearray(SEEDS["wav-pcm_16"])
    data[offset:offset + size] = value.to_bytes(size, "little")
    return bytes(data)


def _float_wav(bad: float) -> bytes:
    x = tone()
    x[1000] = bad
    return sf_bytes(x, SR, subtype="FLOAT")


#: (case, bytes, upload name, expected: "ok" or the AudioError code / HTTP status+code).
NAMED_CASES = [
    ("flac-3h-silence", _flac_silence(3 * 3600), "long.flac", "too_long"),
    ("flac-10min-silence-undeclared", _flac_silence(600, declare=False), "s.flac", "too_long"),
    ("flac-25s-silence", _flac_silence(25), "s.flac", "empty_audio"),
    ("float-wav-nan", _float_wav(np.nan), "nan.wav", "corrupt_audio"),
    ("float-wav-inf", _float_wav(np.inf), "inf.wav", "corrupt_audio"),
    ("wav-0-channels", _wav_field(22, 0, 2), "c0.wav", "unsupported_format"),
    ("wav-8-channels", SEEDS["wav-8ch"], "c8.wav", "ok"),
    ("wav-9-channels", sf_bytes(np.tile(tone()[:, None], (1, 9)), SR), "c9.wav", "ok"),
    ("wav-16-channels", sf_bytes(np.tile(tone()[:, None], (1, 16)), SR), "c16.wav", "ok"),
    ("wav-rate-1hz", _wav_field(24, 1), "r1.wav", "too_long"),
    ("wav-rate-7hz", sf_bytes(tone(1.0, 7_000)[:50], 7), "r7.wav", "ok"),
    ("wav-rate-11025", sf_bytes(tone(2.0, 11_025), 11_025), "r11k.wav", "ok"),
    ("wav-rate-384k", sf_bytes(tone(0.2, 384_000), 384_000), "r384k.wav", "too_short"),
    ("wav-rate-0", _wav_field(24, 0), "r0.wav", "unsupported_format"),
    ("wav-rate-1ghz", _wav_field(24, 1_191_198_336), "r1g.wav", "unsupported_format"),
    ("wav-rate-10mhz", _wav_field(24, 10_000_000), "r10m.wav", "unsupported_format"),
    ("wav-data-size-2gb", _wav_field(40, 0x7FFFFFFF), "big.wav", "corrupt_audio"),
    ("wav-riff-size-4gb", _wav_field(4, 0xFFFFFFFF), "riff.wav", "ok"),
    ("wav-header-only", SEEDS["wav-pcm_16"][:44], "h.wav", "corrupt_audio"),
    ("wav-cut-in-header", SEEDS["wav-pcm_16"][:20], "h.wav", "unsupported_format"),
    ("wav-named-mp3", SEEDS["wav-pcm_16"], "take.mp3", "ok"),
    ("mp3-named-wav", SEEDS["mp3"], "take.wav", "ok"),
    ("flac-named-txt", SEEDS["flac"], "notes.txt", "ok"),
    ("text-named-flac", b"hello, this is not audio\n" * 40, "x.flac", "unsupported_format"),
    ("zeros", bytes(4096), "z.wav", "unsupported_format"),
    ("empty", b"", "e.wav", "empty_audio"),
    ("m4a-cut-half", SEEDS["m4a"][:len(SEEDS["m4a"]) // 2], "h.m4a", "unsupported_format"),
    ("mp3-cut-half", SEEDS["mp3"][:len(SEEDS["mp3"]) // 2], "h.mp3", "corrupt_audio"),
]
# rate 7 Hz: 50 samples declare 7 s; fine to decode (upsampled); see the 1 Hz case for the cap.
HTTP_STATUS = {"too_long": 422, "empty_audio": 422, "too_short": 422, "corrupt_audio": 415,
               "unsupported_format": 415}


def _decode_bounded(data: bytes) -> str:
    """Decode with the cap; return "ok" or the error code; assert the time bound and output."""
    start = time.monotonic()
    try:
        audio = decode(data, max_seconds=MAX_SECONDS)
    except AudioError as exc:
        outcome = exc.code
    else:
        assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
        assert np.isfinite(audio.samples).all()
        assert audio.duration <= MAX_SECONDS * 1.05 + 1
        outcome = "ok"
    assert time.monotonic() - start < DECODE_BOUND_S
    return outcome


@pytest.mark.parametrize(("case", "data", "name", "expected"), NAMED_CASES,
                         ids=[c[0] for c in NAMED_CASES])
def test_decoder_named_cases(case, data, name, expected):
    outcome = _decode_bounded(data)
    if expected == "too_short":  # decodes; the service's minimum duration refuses it
        assert outcome == "ok"
    else:
        assert outcome == expected, case


def _decoder_fuzz(examples: int) -> dict:
    outcomes: dict[str, int] = {}
    rss_before = peak_rss_mb()
    started = time.monotonic()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=random_audio(SEEDS))
    def run(case):
        outcome = _decode_bounded(case[1])
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    run()
    growth = peak_rss_mb() - rss_before
    assert growth < RSS_GROWTH_MB, growth
    return {"cases": sum(outcomes.values()), "outcomes": outcomes,
            "seconds": round(time.monotonic() - started, 1), "peak_rss_growth_mb": round(growth)}


@pytest.mark.parametrize("examples", [pytest.param(300, id="ci"),
                                      pytest.param(5000, id="long", marks=pytest.mark.slow)])
def test_decoder_fuzz(examples):
    """Mutated WAV/FLAC/MP3/OGG/Opus/M4A and random bytes: decoded or a typed error, never a
    crash, a hang or a non-finite sample."""
    figures = _decoder_fuzz(examples)
    assert figures["cases"] >= examples * 0.9
    record_figures(f"decoder_fuzz_{examples}", figures)


# --- the same inputs through HTTP -------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    with seeded_server(tmp_path_factory.mktemp("fuzz"), seeded_dir, embedder, init_checkpoint,
                       max_upload_mb=1, max_query_seconds=MAX_SECONDS,
                       max_track_seconds=MAX_SECONDS, embed_queue=4) as live, \
            live.client() as c:
        yield c


def _post(client, route: str, data: bytes, name: str):
    start = time.monotonic()
    fields = {"k": "3"} if route == "/v1/search" else {"id": "fuzz-track", "artist": "fuzz"}
    resp = client.post(route, files={"file": (name, data)}, data=fields)
    elapsed = time.monotonic() - start
    assert elapsed < 2 * DECODE_BOUND_S, elapsed
    ok = 200 if route == "/v1/search" else 201
    assert resp.status_code in UPLOAD_ERRORS | {ok}, resp.text
    if resp.status_code != ok:
        assert_error(resp, resp.status_code)
    return resp, elapsed


@pytest.mark.parametrize("route", ["/v1/search", "/v1/tracks"])
@pytest.mark.parametrize(("case", "data", "name", "expected"), NAMED_CASES,
                         ids=[c[0] for c in NAMED_CASES])
def test_upload_named_cases(client, route, case, data, name, expected):
    resp, _ = _post(client, route, data, name)
    if expected == "ok":
        assert resp.status_code in (200, 201), resp.text
    else:
        assert_error(resp, HTTP_STATUS[expected], expected)


def test_upload_over_cap_is_413(client):
    """1 MB cap: a 2 MB upload (a valid WAV) is refused before it is decoded."""
    big = sf_bytes(tone(40.0), SR)
    assert len(big) > 1024 * 1024
    for route in ("/v1/search", "/v1/tracks"):
        assert_error(_post(client, route, big, "big.wav")[0], 413, "payload_too_large")


def _api_fuzz(client, examples: int) -> dict:
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    rss_before = peak_rss_mb()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=random_audio(SEEDS), route_pick=ROUTES)
    def run(case, route_pick):
        resp, elapsed = _post(client, route_pick, case[1], "upload.wav")
        key = f"{route_pick} {resp.status_code}"
        statuses[key] = statuses.get(key, 0) + 1
        latencies.append(elapsed)

    run()
    # the server still answers, and its catalog is intact (12 seeded + at most the fuzz id)
    assert client.get("/readyz").json()["tracks"] in (12, 13)
    growth = peak_rss_mb() - rss_before
    assert growth < RSS_GROWTH_MB, growth
    return {"cases": sum(statuses.values()), "statuses": statuses, "http_500": 0,
            "max_latency_s": round(max(latencies), 2), "peak_rss_growth_mb": round(growth)}


@pytest.mark.parametrize("examples", [pytest.param(60, id="ci"),
                                      pytest.param(1500, id="long", marks=pytest.mark.slow)])
def test_upload_fuzz(client, examples):
    """Mutated and random uploads to /v1/search and /v1/tracks: only 200/201/413/415/422."""
    figures = _api_fuzz(client, examples)
    record_figures(f"upload_fuzz_{examples}", figures)


def test_wav_declaring_hours_costs_nothing():
    """A 60-byte WAV header declaring 6 hours is refused from the header, before decoding."""
    header = bytearray(SEEDS["wav-pcm_16"][:44])
    header[40:44] = struct.pack("<I", 6 * 3600 * SR * 2)
    start = time.monotonic()
    with pytest.raises(AudioError):
        decode(bytes(header) + bytes(2000), max_seconds=MAX_SECONDS)
    assert time.monotonic() - start < 1.0
