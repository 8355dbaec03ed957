"""The CPU-heavy steps of a request (decode, embed, store) and how they enter the pool.

The functions here are plain and synchronous: they run on an `EmbedPool` worker, never on the
event loop. `JobRunner.run` turns a full pool into the API's 503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.errors import ApiError
from app.metrics import Metrics
from app.pool import EmbedPool, PoolFull
from model.audio.decode import DecodedAudio, decode
from model.inference.embedder import Embedder

T = TypeVar("T")


@dataclass(frozen=True)
class JobRunner:
    """The pool a request's CPU-heavy work enters, and the counter of refused jobs."""

    pool: EmbedPool
    metrics: Metrics

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run `fn` in the bounded pool; 503 (retry later) when it is full."""
        try:
            return await self.pool.run(fn, *args)
        except PoolFull:
            self.metrics.rejected.inc()
            raise ApiError(503, "busy", "too many audio jobs in progress; retry shortly",
                           {"Retry-After": "1"}) from None


def decode_checked(data: bytes, max_seconds: float, min_seconds: float,
                   threads: int = 1) -> DecodedAudio:
    """Decode an upload (a long one in `threads` parts at once); AudioError subclasses become
    415/422, too-short clips 422."""
    audio = decode(data, max_seconds=max_seconds, threads=threads)
    if audio.duration < min_seconds:
        raise ApiError(422, "too_short",
                       f"the audio is {audio.duration:.2f} s long; at least {min_seconds:g} s "
                       "is needed")
    return audio


@dataclass(frozen=True)
class EmbeddedQuery:
    """An embedded upload: its vector, decoded length, the seconds the vector pooled, and
    whether any second was judged sung (None when nothing judges: no separation, no gate)."""

    vector: np.ndarray
    duration: float
    used: list[bool]
    singing: bool | None


def embed_query(embedder: Embedder, data: bytes, max_seconds: float,
                min_seconds: float) -> EmbeddedQuery:
    """An upload -> its embedding and what the embedder found in it (`EmbeddedQuery`)."""
    audio = decode_checked(data, max_seconds, min_seconds, threads=embedder.lanes)
    masks: list[np.ndarray] = []
    singing: list[bool] = []
    vector = embedder.embed_many([audio.samples], masks_out=masks, singing_out=singing)[0]
    return EmbeddedQuery(vector, audio.duration, [bool(m) for m in masks[0]],
                         singing[0] if embedder.detects_singing else None)
