"""schemathesis against the service's own OpenAPI schema, over a live loopback server: no
generated request (valid or not, with the API key) gets a 5xx, and every error has our shape."""

from __future__ import annotations

import numpy as np
import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, settings

from app.main import create_app
from app.settings import Settings
from tests.reliability.harness import record_figures, seeded_server

KEY = "schema-key"
#: The schema as the app publishes it (building the app loads nothing: that is the lifespan).
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(api_key=KEY, _env_file=None)).openapi())
STATUSES: dict[str, int] = {}


def _flushes_denormals() -> bool:
    return float(np.float64(5e-324) * np.float64(1.0)) == 0.0


@pytest.fixture(autouse=True)
def ieee_floats():
    """Hypothesis needs subnormal floats (`min_score`); loading the embedder on this thread may
    have set flush-to-zero. Off while generating, restored afterwards."""
    was = _flushes_denormals()
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(was)


@pytest.fixture(scope="module")
def live(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    with seeded_server(tmp_path_factory.mktemp("schema"), seeded_dir, embedder, init_checkpoint,
                       api_key=KEY, max_upload_mb=1, max_query_seconds=30) as server:
        yield server
    cases = sum(STATUSES.values())
    record_figures("schemathesis", {"requests": cases, "statuses": dict(sorted(STATUSES.items())),
                                    "http_5xx": sum(n for k, n in STATUSES.items()
                                                    if k.split()[-1].startswith("5"))})


def _check(case, live) -> None:
    resp = case.call(base_url=live.url, headers={"X-API-Key": KEY}, timeout=60)
    key = f"{case.method} {case.path} {resp.status_code}"
    STATUSES[key] = STATUSES.get(key, 0) + 1
    assert resp.status_code < 500, (case.method, case.formatted_path, resp.text[:300])
    if resp.status_code >= 400:
        body = resp.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
        assert "Traceback" not in resp.text


@SCHEMA.parametrize()
@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, live):
    _check(case, live)


@pytest.mark.slow
@SCHEMA.parametrize()
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_long(case, live):
    _check(case, live)
