"""libswresample called directly (ctypes), so resampling runs without Python's GIL.

Why by hand: PyAV's `AudioResampler` is the same libswresample, but it holds the GIL while it
works, so a query decoded as two parts on two threads resampled them one after the other: on
the 2-core AMD EPYC two halves of a 30 s 44.1 kHz signal took 7.2 ms in parallel against 3.3 ms
for one. ctypes releases the GIL for every foreign call: the same two halves take 4.4 ms, with
bit-identical samples (tests/model/test_audio_paths.py compares the two on every rate we meet).

The library is the one inside PyAV's wheel (already loaded by `import av`), so there is nothing
more to install and the filter is exactly the one every catalog embedding was made with. Only
mono float32 in and out at the library's default options is wrapped. Where the library cannot
be found or has an ABI this was not written for, `available()` is False and
model/audio/resample.py keeps PyAV.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import cache

import numpy as np

#: libswresample majors whose `swr_alloc_set_opts2` / `AVChannelLayout` this matches (FFmpeg
#: 5.1 to 8.x).
_MAJORS = (4, 5, 6)
_NATIVE_ORDER, _FRONT_CENTER, _FLT = 1, 0x4, 3  # AV_CHANNEL_ORDER_NATIVE, AV_CH_..., FLT


class _Layout(ctypes.Structure):
    """FFmpeg's `AVChannelLayout` (order, nb_channels, the mask union, opaque)."""

    _fields_ = [("order", ctypes.c_int), ("nb_channels", ctypes.c_int),
                ("mask", ctypes.c_uint64), ("opaque", ctypes.c_void_p)]


_MONO = _Layout(_NATIVE_ORDER, 1, _FRONT_CENTER, None)
_P = ctypes.c_void_p


def _candidates() -> list[str]:
    """libswresample files shipped with PyAV (manylinux `av.libs`, macOS `.dylibs`)."""
    import av

    base = os.path.dirname(os.path.abspath(av.__file__))
    patterns = [os.path.join(base, "..", "av.libs", "libswresample*.so*"),
                os.path.join(base, ".dylibs", "libswresample*.dylib")]
    return sorted(p for pattern in patterns for p in glob.glob(pattern))


@cache
def _library() -> ctypes.CDLL | None:
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if lib.swresample_version() >> 16 not in _MAJORS:
            continue
        lib.swr_alloc_set_opts2.argtypes = [ctypes.POINTER(_P), ctypes.POINTER(_Layout),
                                            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Layout),
                                            ctypes.c_int, ctypes.c_int, ctypes.c_int, _P]
        lib.swr_init.argtypes = [_P]
        lib.swr_get_out_samples.argtypes = [_P, ctypes.c_int]
        lib.swr_convert.argtypes = [_P, ctypes.POINTER(_P), ctypes.c_int, ctypes.POINTER(_P),
                                    ctypes.c_int]
        lib.swr_free.argtypes = [ctypes.POINTER(_P)]
        return lib
    return None


def available() -> bool:
    """Whether PyAV's libswresample could be bound (False: use PyAV's resampler)."""
    try:
        return _library() is not None
    except (ImportError, AttributeError):
        return False


class SwrMono:
    """One libswresample context: mono float32 at `rate` -> mono float32 at `target`, stateful
    across calls (blocks in order, then `flush`), like PyAV's `AudioResampler`."""

    def __init__(self, rate: int, target: int) -> None:
        lib = _library()
        if lib is None:
            raise RuntimeError("libswresample is not available through ctypes")
        self._lib, self._ctx = lib, _P()
        if lib.swr_alloc_set_opts2(ctypes.byref(self._ctx), ctypes.byref(_MONO), _FLT, target,
                                   ctypes.byref(_MONO), _FLT, rate, 0, None) < 0:
            raise ValueError(f"libswresample refused {rate} -> {target} Hz")
        if lib.swr_init(self._ctx) < 0:
            self.close()
            raise ValueError(f"libswresample could not resample {rate} -> {target} Hz")

    def convert(self, block: np.ndarray) -> np.ndarray:
        """Resample the next block (float32, 1-d); returns what the filter can emit so far."""
        block = np.ascontiguousarray(block, np.float32)
        return self._run(_P(block.ctypes.data), len(block))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter's delay line (end of the stream)."""
        out = [self._run(None, 0)]
        while len(out[-1]):
            out.append(self._run(None, 0))
        return np.concatenate(out)

    def _run(self, data: _P | None, n: int) -> np.ndarray:
        room = self._lib.swr_get_out_samples(self._ctx, n) + 16
        out = np.empty(max(room, 16), np.float32)
        dst = _P(out.ctypes.data)
        src = ctypes.byref(data) if data is not None else None
        got = self._lib.swr_convert(self._ctx, ctypes.byref(dst), len(out), src, n)
        if got < 0:
            raise RuntimeError(f"libswresample failed (error {got})")
        return out[:got]

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._lib.swr_free(ctypes.byref(self._ctx))

    def __del__(self) -> None:
        self.close()
