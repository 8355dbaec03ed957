"""Private catalogs: a read key, signed audio links, and a per-client limit on search.

- With `CVSM_READ_API_KEY` set, search, listing, the map and track audio need `X-API-Key`
  (the read key, or the write key, which can do everything). Health and metrics stay open.
- An `<audio>` element cannot send a header, so audio URLs in responses are signed: an HMAC of
  the track id and an expiry time, keyed by the read key, valid for `audio_url_ttl_s`. The key
  itself never appears in a URL, and a leaked link stops working.
- `/v1/search` is the expensive route: each client (its API key, else its address) gets
  `search_rate_limit` (the `limits` library's moving window, e.g. "60/minute"); past it, 429
  with `Retry-After`. Without a read key and without a limit, everything is as before.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import SecretStr

from app.auth import key_matches
from app.errors import ApiError


class AudioLinks:
    """Audio URLs for responses, signed when the catalog is private."""

    def __init__(self, read_key: SecretStr | None, ttl_s: float) -> None:
        self.secret = read_key.get_secret_value().encode() if read_key else None
        self.ttl_s = ttl_s

    def _signature(self, track_id: str, expires: int) -> str:
        assert self.secret is not None
        message = f"{track_id}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def url(self, track_id: str, now: float | None = None) -> str:
        return self.signed(f"/v1/tracks/{track_id}/audio", track_id, now)

    def signed(self, base: str, subject: str, now: float | None = None) -> str:
        """`base`, with an expiry and a signature of `subject` when the catalog is private
        (a track id, or another audio's own subject such as a study's query clip)."""
        if self.secret is None:
            return base
        expires = int((now or time.time()) + self.ttl_s)
        return f"{base}?expires={expires}&sig={self._signature(subject, expires)}"

    def check(self, track_id: str, expires: int | None, sig: str | None) -> None:
        """Raise 401 unless the link is signed for `track_id` (or another subject) and not
        expired."""
        if expires is None or not sig:
            raise ApiError(401, "unauthorized", "a valid X-API-Key header or a signed audio "
                           "link (from a search or listing) is required")
        if not hmac.compare_digest(sig, self._signature(track_id, expires)):
            raise ApiError(401, "unauthorized", "this audio link's signature is not valid")
        if expires < time.time():
            raise ApiError(401, "link_expired", "this audio link has expired: search or list "
                           "the catalog again for a fresh one")


def read_allowed(read_key: SecretStr | None, write_key: SecretStr | None,
                 given: str | None) -> bool:
    """Open catalogs always; private ones with the read key or the write key."""
    if read_key is None:
        return True
    return key_matches(read_key, given) or (write_key is not None
                                            and key_matches(write_key, given))


class SearchLimiter:
    """A moving-window limit per client on search; `spec` "" means no limit."""

    def __init__(self, spec: str) -> None:
        self.item = parse(spec) if spec else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        """Count one search for `client`; 429 with Retry-After past the limit."""
        if self.item is None or self.limiter.hit(self.item, client):
            return
        reset = self.limiter.get_window_stats(self.item, client).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        raise ApiError(429, "rate_limited", f"too many searches from this client (limit: "
                       f"{self.item}): try again in {retry} s",
                       headers={"Retry-After": str(retry)})
