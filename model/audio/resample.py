"""Mono blocks at the source rate -> 16 kHz, block by block, with the state carried across.

FFmpeg's libswresample with its default filter: the resampler every embedding in the catalog
was made with. It is called through ctypes (model/audio/swr.py) so that parts decoded on two
threads resample at once, or through PyAV where that binding is not available; both give the
same samples. libsoxr's HQ filter was measured as a cheaper replacement (3.5 ms
against ~4 ms per 30 s of 44.1 kHz audio) and rejected: its passband ends at 7.3 kHz against
7.76 kHz here, which the top mel bands (up to 7.8 kHz) see, and on the 746 MIR-1K test tracks
it moved embeddings to cosine 0.9941 (min) and changed 36% of the tracks' top-10 lists
(docs/benchmarks.md, "Issue 14"). One stateful resampler per stream, so blocks of any size give
the samples of resampling the whole signal at once.
"""

from __future__ import annotations

import numpy as np

from model.audio import swr
from model.audio.signal import SAMPLE_RATE

#: Highest source sample rate accepted (studio formats stop at 768 kHz); found by fuzzing:
#: resampling from ~1 GHz took libswresample ~10 s.
MAX_SOURCE_RATE = 768_000


class BlockResampler:
    """A stateful resampler for one source rate: feed blocks in order, then `last=True`."""

    def __init__(self, rate: int, direct: bool | None = None) -> None:
        """`direct`: libswresample through ctypes (None: wherever it is available; False:
        PyAV's resampler, the reference the tests compare against)."""
        self.rate = rate
        self._swr = self._direct = None
        if rate == SAMPLE_RATE:
            return
        if direct is None:
            direct = swr.available()
        if direct:
            self._direct = swr.SwrMono(rate, SAMPLE_RATE)
            return
        import av  # here, not at import: decode.py works (by libsndfile) without PyAV

        self._swr = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._direct is not None:
            out = self._direct.convert(block) if block.size else np.zeros(0, np.float32)
            return np.concatenate([out, self._direct.flush()]) if last else out
        if self._swr is None:
            return block
        import av

        frames = []
        if block.size:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32)
                                               .reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self.rate
            frames = self._swr.resample(frame)
        if last:
            frames = frames + self._swr.resample(None)
        if not frames:
            return np.zeros(0, np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
