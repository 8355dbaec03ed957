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

from tests.conftest import PLAIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(cwd: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    """`cvsm serve` as scripts/serve.sh runs it, once /readyz answers 200."""
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
    proc = subprocess.Popen(cmd, env={**clean, **env}, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline, ready = time.monotonic() + 120, None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if ready.status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"not ready: {proc.communicate()[0][-2000:]}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    # uvicorn re-raises the captured SIGTERM after a graceful shutdown
    assert proc.returncode in (0, -signal.SIGTERM), output
    return output


def test_serve_on_a_fresh_data_dir(tmp_path: Path):
    """README's first command: the default data dir (./data) gets a demo catalog whose audio
    plays; the data dir can then be moved and still serves its audio."""
    port = free_port()
    env = {"CVSM_DEMO_SINGERS": "2", "CVSM_DEMO_SONGS": "2", "CVSM_REFRESH_SECONDS": "0"}
    proc = _serve(tmp_path, port, env)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["tracks"] == 4
        tracks = httpx.get(f"http://127.0.0.1:{port}/v1/tracks").json()
        assert tracks["total"] == 4 and tracks["items"][0]["artist"] == "singer00"
        audio = httpx.get(f"http://127.0.0.1:{port}{tracks['items'][0]['audio_url']}")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF", audio.text[:200]
    finally:
        output = _stop(proc)
    assert "Application shutdown complete" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert (tmp_path / "data" / "cvsm.db").is_file()
    (tmp_path / "data").rename(tmp_path / "moved")
    proc = _serve(tmp_path, port, {**env, "CVSM_DATA_DIR": str(tmp_path / "moved")})
    try:
        audio = httpx.get(f"http://127.0.0.1:{port}{tracks['items'][1]['audio_url']}")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF", audio.text[:200]
    finally:
        _stop(proc)
