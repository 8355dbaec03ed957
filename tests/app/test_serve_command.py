"""`cvsm serve` as README's first command runs it: a fresh data dir gets migrated, a model, a
demo catalog, and a listening service that prints its URL; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_a_fresh_data_dir(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "CVSM_DATA_DIR": str(tmp_path / "data"), "CVSM_DEMO_SINGERS": "2",
           "CVSM_DEMO_SONGS": "2", "CVSM_REFRESH_SECONDS": "0"}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline, ready = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, proc.poll()
        assert ready.json()["tracks"] == 4
        tracks = httpx.get(f"http://127.0.0.1:{port}/v1/tracks").json()
        assert tracks["total"] == 4 and tracks["items"][0]["artist"] == "singer00"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    # uvicorn re-raises the captured SIGTERM after a graceful shutdown
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert (tmp_path / "data" / "cvsm.db").is_file()
