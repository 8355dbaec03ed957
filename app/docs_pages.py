"""API documentation that works without internet: /docs (Swagger UI) and /redoc.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, so on an offline machine /docs is
a blank page. Here the same pages (FastAPI's own `get_swagger_ui_html` / `get_redoc_html`, its
documented self-hosting recipe) point at copies of the assets served by the app itself; the
assets come from the `fastapi-offline` wheel, which ships them (Swagger UI: Apache-2.0, ReDoc:
MIT), so nothing is vendored into this repository.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def _asset_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc with local assets (create the app with docs_url=None,
    redoc_url=None)."""
    app.mount(ASSETS, StaticFiles(directory=_asset_dir()), name="docs-assets")
    title, spec = app.title, app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=spec, title=f"{title} - API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=spec, title=f"{title} - ReDoc",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)
