"""docker-compose.yml (issue 15): it validates (`docker-compose config`, Debian's package; no
Docker engine here), runs PostgreSQL, two API replicas and an nginx load balancer whose upstream
names exactly those replicas, and each replica keeps its own index but shares the uploads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config() -> str:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    done = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _service(config: str, name: str) -> str:
    """The text of one service's block in the normalised config."""
    match = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\n)*)", config, re.MULTILINE)
    assert match, name
    return match.group(1)


def test_replicas_behind_a_load_balancer(config: str) -> None:
    upstream = re.findall(r"server (\S+):8000", (ROOT / "deploy/nginx.conf").read_text())
    assert upstream == ["api-a", "api-b"]
    lb = _service(config, "lb")
    assert "image: nginx" in lb and "deploy/nginx.conf" in lb and "published: 8000" in lb
    assert lb.count("condition: service_healthy") == 2  # traffic once a replica is ready
    for name in upstream:
        api = _service(config, name)
        assert "cvsm serve" in api and "postgresql+psycopg://" in api
        assert f"{name}-data" in api and "cvsm-audio" in api and "/data/audio" in api
    assert "image: postgres" in _service(config, "db")
