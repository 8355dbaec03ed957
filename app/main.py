"""The FastAPI application factory: `create_app(settings)`.

The lifespan creates the pool and metrics at once and loads the model and the catalog in a
background task (so /healthz answers while a large index loads); it closes everything on exit.
Middlewares, outermost first: metrics (counts every answer, 413s included), CORS, API key on
writes, body cap: the last two answer before a body is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import faiss
import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import docs_pages, errors
from app.access import SearchLimiter
from app.auth import WriteKeyMiddleware
from app.catalog_map import CatalogMap
from app.limits import BodyLimitMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.pool import EmbedPool
from app.routes import health, search, tracks
from app.routes import map as map_routes
from app.routes import studies as study_routes
from app.scores import load_calibration
from app.settings import Settings
from app.state import ServiceState
from index import changes
from index.catalog import Catalog, ModelMismatchError
from model.inference.backends import torch_threads_for
from model.inference.embedder import Embedder
from model.version import VERSION
from model.weights import default_checkpoint

log = logging.getLogger("cvsm.app")
STATIC = Path(__file__).with_name("static")
#: Longest wait between attempts to open an unreachable catalog at start-up.
OPEN_RETRY_MAX_S = 5.0


def configure_threads(settings: Settings) -> None:
    """Few threads on a small box: one torch pool for the workers, FAISS single-threaded.
    ONNX Runtime's session gets the same `torch_threads` (load_embedder); concurrent requests
    share that one pool, so 2 cores are never asked for more than ~2 busy threads."""
    torch.set_num_threads(settings.torch_threads)
    faiss.omp_set_num_threads(settings.faiss_threads)


def prepare_worker_thread() -> None:
    """Flush-to-zero is a per-thread CPU flag: set it on every embedding worker too, or an
    untrained (or freshly re-normalised) network can run 10x slower on denormal floats."""
    torch.set_flush_denormal(True)


def load_embedder(settings: Settings, path: Path | None = None) -> Embedder:
    """The default model (or the one at `path`), run as the settings say."""
    path = path or settings.checkpoint or default_checkpoint()
    embedder = Embedder.from_checkpoint(
        path, device=settings.device, backend=settings.backend, gate=settings.vocal_gate,
        separation=settings.separation,
        threads=settings.torch_threads,
        cache_dir=settings.onnx_cache_dir or settings.data_dir / "models" / "onnx")
    torch.set_num_threads(torch_threads_for(embedder.backend, settings.torch_threads))
    return embedder


def load_extra_models(settings: Settings) -> dict[str, Embedder]:
    """The models served beside the default one (settings.extra_models), by name."""
    return {name: load_embedder(settings, path) for name, path in settings.extra_models.items()}


def open_catalog(settings: Settings, embedder: Embedder,
                 extras: dict[str, Embedder] | None = None) -> Catalog:
    catalog = Catalog(settings.db_url, settings.data_dir, embedder, settings.index_factory,
                      mmap=settings.index_mmap)
    try:
        for name, other in (extras or {}).items():
            catalog.attach(name, other)
        catalog.open()
    except BaseException:
        catalog.close()  # release its connections before the next attempt
        raise
    return catalog


async def _load(state: ServiceState, embedder: Embedder | None) -> None:
    """Load model and catalog off the event loop; on failure stay alive but not ready. A
    catalog that cannot be opened (database down, data dir unusable) is retried with backoff,
    so the service becomes ready by itself once the database returns."""
    try:
        configure_threads(state.settings)
        emb = embedder or await asyncio.to_thread(load_embedder, state.settings)
        extras = await asyncio.to_thread(load_extra_models, state.settings)
    except Exception:
        state.failed = True
        log.exception("the service could not load its model")
        return
    delay = 0.5
    while True:
        try:
            state.catalog = await asyncio.to_thread(open_catalog, state.settings, emb, extras)
            break
        except (ModelMismatchError, ValueError):  # another model's index; a bad model name
            state.failed = True
            log.exception("the catalog cannot serve these models")
            return
        except Exception as exc:
            log.warning("the catalog could not be opened (%s); retrying in %.1f s",
                        type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, OPEN_RETRY_MAX_S)
    state.calibration = load_calibration(state.settings.calibration, emb.fingerprint)
    state.embedder = emb
    state.map.schedule_refresh(state.catalog.repository)  # the first map, before the page asks
    log.info("ready: model %s, %s tracks", emb.fingerprint, state.index_size())


async def _every(period: float, state: ServiceState, work: Callable[[Catalog], int],
                 what: str) -> None:
    """Run `work(catalog)` off the event loop every `period` seconds once the service is
    ready (never when `period` is 0); a change it reports refreshes the map."""
    while period > 0:
        await asyncio.sleep(period)
        if state.ready:
            try:
                if await asyncio.to_thread(work, state.catalog):
                    state.map.touch()
            except Exception:
                log.exception("%s failed; will retry", what)


def _full_refresh(catalog: Catalog) -> int:
    """The slow safety net: a full comparison with SQL, and old change rows pruned."""
    changes.prune(catalog.repository.sessions)
    return catalog.refresh()


def _background(state: ServiceState) -> list[asyncio.Task]:
    """Following the change feed (other replicas' writes, within ~`follow_seconds`) and the
    periodic full refresh (tracks indexed by a concurrent `cvsm index` job, anything missed)."""
    s = state.settings
    return [asyncio.create_task(_every(s.follow_seconds, state, Catalog.follow, "following")),
            asyncio.create_task(_every(s.refresh_seconds, state, _full_refresh, "refresh"))]


def _lifespan(state: ServiceState, embedder: Embedder | None
              ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(_load(state, embedder))
        loops = _background(state)
        app.state.loader = loader
        try:
            yield
        finally:
            for task in loops:
                task.cancel()
            loader.cancel()  # may be waiting for the database: shutdown must not
            with suppress(asyncio.CancelledError):
                await loader
            state.pool.close()
            if state.catalog is not None:
                state.catalog.close()
    return lifespan


def _add_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.api_key is not None:
        app.add_middleware(WriteKeyMiddleware, key=settings.api_key)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["X-API-Key", "Content-Type"])
    app.add_middleware(MetricsMiddleware, metrics=metrics)


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """Build the app; `embedder` reuses a model the caller already loaded (`cvsm serve`)."""
    settings = settings or Settings()
    metrics = Metrics()
    state = ServiceState(settings=settings, metrics=metrics,
                         pool=EmbedPool(settings.embed_workers, settings.embed_queue,
                                        prepare_worker_thread),
                         map=CatalogMap(settings.map_points, settings.map_refresh_seconds),
                         limiter=SearchLimiter(settings.search_rate_limit))
    metrics.bind(state.index_size, lambda: state.pool.depth)
    app = FastAPI(title="CVSM vocal similarity search", version=VERSION,
                  description="Upload a song or a vocal take; get the catalog tracks whose "
                  "singer sounds most alike.", lifespan=_lifespan(state, embedder),
                  docs_url=None, redoc_url=None)  # served offline by app/docs_pages.py
    app.state.service = state
    errors.install(app)
    for module in (health, search, tracks, map_routes, study_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs_pages.install(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/study/{name}", include_in_schema=False)
    async def study_page(name: str) -> FileResponse:
        """The participant page (its API calls carry the read key, from `?key=`, if any)."""
        return FileResponse(STATIC / "study.html")

    @app.get("/study/{name}/results", include_in_schema=False)
    async def study_results_page(name: str) -> FileResponse:
        """The study's results for people (`/v1/studies/{name}/results`, drawn)."""
        return FileResponse(STATIC / "study-results.html")

    _add_middleware(app, settings, metrics)
    return app
