"""The bounded pool that runs CPU-heavy decode + embedding off the event loop.

`workers` threads do the work (torch and PyAV release the GIL); at most `queue` more jobs may
wait. A job beyond that is refused at once with `PoolFull` (the API answers 503 + Retry-After)
instead of piling up latency for everyone: on a 2-core machine a queue is only a delay.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class PoolFull(Exception):
    """Every worker is busy and the waiting line is full."""


class EmbedPool:
    """A thread pool with an admission bound of `workers + queue` jobs."""

    def __init__(self, workers: int, queue: int,
                 initializer: Callable[[], None] | None = None) -> None:
        self.capacity = workers + queue
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvsm-embed",
                                            initializer=initializer)
        self._lock = threading.Lock()
        self._active = 0

    @property
    def depth(self) -> int:
        """Jobs admitted and not yet finished."""
        return self._active

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run `fn(*args)` on a worker; raise `PoolFull` instead of waiting for a slot.

        The slot is freed when the job ends, not when the caller stops waiting, so a client
        that hangs up cannot let more than `capacity` jobs pile up in the executor.
        """
        if not self._slots.acquire(blocking=False):
            raise PoolFull()
        with self._lock:
            self._active += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def _done(self, _future: object) -> None:
        with self._lock:
            self._active -= 1
        self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
