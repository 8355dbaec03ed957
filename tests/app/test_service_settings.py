"""Settings come from CVSM_* variables and .env (only app/ reads the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.auth import key_matches
from app.cli import build_parser
from app.commands.serve import settings_from
from app.settings import Settings


def test_environment_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CVSM_PORT=9100\nCVSM_API_KEY=from-dotenv\n")
    monkeypatch.setenv("CVSM_CORS_ORIGINS", '["http://a.test"]')
    monkeypatch.setenv("CVSM_DATA_DIR", str(tmp_path / "d"))
    s = Settings()
    assert s.port == 9100 and s.cors_origins == ["http://a.test"]
    assert s.api_key.get_secret_value() == "from-dotenv" and "from-dotenv" not in repr(s)
    assert s.db_url == f"sqlite:///{(tmp_path / 'd' / 'cvsm.db').resolve()}"


def test_flags_override_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CVSM_PORT", "9100")
    args = build_parser().parse_args(["serve", "--port", "9200", "--no-demo"])
    s = settings_from(args)
    assert s.port == 9200 and s.seed_demo is False and s.data_dir == Path("data")


@pytest.mark.parametrize(("expected", "given", "ok"), [
    (None, None, True), ("k", "k", True), ("k", "K", False), ("k", None, False), ("k", "", False),
])
def test_key_matches(expected, given, ok):
    secret = None if expected is None else Settings(api_key=expected, _env_file=None).api_key
    assert key_matches(secret, given) is ok
