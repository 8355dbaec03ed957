"""The API key that guards writes when `CVSM_API_KEY` is set.

Checked twice on purpose: a pure ASGI middleware refuses an unauthenticated write before a
byte of its (possibly 20 MB) body is read or parsed, and the `WriteAuth` dependency documents
the key in OpenAPI and guards the routes even if the middleware were left out.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import HttpMiddleware
from app.errors import error_body

HEADER = "X-API-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNAUTHORIZED = "a valid X-API-Key header is required"


def key_matches(expected: SecretStr | None, given: str | None) -> bool:
    """True when no key is configured, or `given` equals it (constant-time comparison)."""
    if expected is None:
        return True
    return bool(given) and hmac.compare_digest(given.encode(),
                                               expected.get_secret_value().encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class WriteKeyMiddleware(HttpMiddleware):
    """401 for write methods under `prefix` without the key, before the body is read."""

    def __init__(self, app: ASGIApp, key: SecretStr, prefix: str = "/v1/tracks") -> None:
        super().__init__(app)
        self.key, self.prefix = key, prefix

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["method"] in WRITE_METHODS and scope["path"].startswith(self.prefix)
        if guarded and not key_matches(self.key, _header(scope, HEADER.lower().encode())):
            body = error_body("unauthorized", UNAUTHORIZED)
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
