"""Request-body cap enforced as the bytes arrive, before any parser buffers them.

A pure ASGI middleware: a declared Content-Length over the cap is refused at once without
reading the body; otherwise `receive` is wrapped to count bytes, and the moment the count passes
the cap the app is cut off (its further reads see a disconnect) and the client gets a 413. The
server then closes the connection rather than draining the rest of a 50 MB upload.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import HttpMiddleware
from app.errors import error_body


class BodyTooLarge(Exception):
    """Raised into the app when the streamed body passes the cap."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_413(send: Send, limit: int) -> None:
    body = error_body("payload_too_large", f"the request body is larger than {limit} bytes")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware(HttpMiddleware):
    """Refuse bodies over `max_bytes` (413) by Content-Length up front and while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_413(send, self.max_bytes)
            return
        state = {"seen": 0, "over": False, "started": False}

        async def counted_receive() -> Message:
            if state["over"]:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_bytes:
                    state["over"] = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return  # the app's answer to a cut-off body is replaced by the 413
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await send_413(send, self.max_bytes)
