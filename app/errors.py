"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Handlers map our typed errors (ApiError, model.audio.AudioError) and framework errors to it;
the catch-all answers 500 with a fixed message, so no stack trace or file path reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.audio.decode import AudioError, EmptyAudioError, TooLongError

log = logging.getLogger("cvsm.app")

#: HTTP status of each AudioError code; unknown codes are "unsupported media".
AUDIO_STATUS = {EmptyAudioError.code: 422, TooLongError.code: 422}


class ApiError(Exception):
    """An error we mean to show the client, with its HTTP status and a stable code."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def error_body(code: str, message: str) -> bytes:
    """The same body as raw bytes, for the pure-ASGI middlewares."""
    import json

    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _audio_error(_: Request, exc: AudioError) -> JSONResponse:
    return error_response(AUDIO_STATUS.get(exc.code, 415), exc.code, str(exc))


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return error_response(exc.status_code, code, message, getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(422, "invalid_parameters", "; ".join(parts) or "invalid request")


async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
    log.error("database error: %s", exc.__class__.__name__)
    return error_response(503, "database_unavailable", "the catalog database is not reachable",
                          {"Retry-After": "5"})


async def _storage_error(_: Request, exc: OSError) -> JSONResponse:
    """Disk full, read-only or a file where a folder belongs: say so, never which path."""
    log.error("storage error: %s (errno %s)", exc.__class__.__name__, exc.errno)
    return error_response(503, "storage_unavailable", "the catalog's storage cannot be "
                          "written; retry later", {"Retry-After": "5"})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI) -> None:
    """Register every handler on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AudioError, _audio_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(OSError, _storage_error)
    app.add_exception_handler(Exception, _unexpected)
