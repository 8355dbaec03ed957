"""A real uvicorn serving `create_app(settings)` on a free loopback port, in a thread.

Used by the service tests and the browser test: requests go through a real socket, HTTP
parser and event loop, exactly as in production.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from app.main import create_app
from app.settings import Settings
from model.inference.embedder import Embedder


class LiveServer:
    """Context manager: start on enter (waits for /healthz, optionally /readyz), stop on exit."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 wait_ready: bool = True) -> None:
        self.app = create_app(settings, embedder=embedder)
        self.settings, self.wait_ready = settings, wait_ready
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        self._wait("/healthz")
        if self.wait_ready:
            self._wait("/readyz")
        return self

    def _wait(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self.thread.is_alive():
                raise RuntimeError("the server thread died")
            time.sleep(0.05)
        raise TimeoutError(f"{path} did not answer 200 within {timeout} s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)
