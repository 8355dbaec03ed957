"""Settings of the service and of every `cvsm` command that shares its options: the only place
that reads the environment (CVSM_* variables and .env).

Precedence: command-line flag > `CVSM_<FIELD>` variable > `.env` file in the working directory >
the default here. The commands pass only the flags the user gave (app/commands/options.py), so
`cvsm index`, `cvsm merge`, `cvsm migrate` and `cvsm serve` resolve the data dir, database, model,
device, backend and vocal gate alike. Everything else receives a `Settings` instance, so tests
build one directly and never touch `os.environ`; the lower layers (index/, model/) take plain
arguments.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of `create_app` and the `cvsm` commands; every field is `CVSM_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CVSM_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="catalog folder: FAISS index, SQLite "
                           "file, uploaded audio")
    database_url: str = Field("", description="SQLAlchemy URL of the catalog database; empty: "
                              "the SQLite file cvsm.db in the data dir")
    checkpoint: Path | None = Field(None, description="model file (inference export or "
                                    "training checkpoint); unset: the bundled model")
    extra_models: dict[str, Path] = Field(
        default_factory=dict, description="other models served beside the default one, name "
        "-> model file, each indexed with `cvsm index --extra-model`; a search picks one with "
        "`model` (a listening study compares them). Variable: a JSON object")
    index_factory: str | None = Field(None, description="FAISS index type, e.g. HNSW32,Flat; "
                                      "unset: chosen by catalog size")
    index_mmap: bool = Field(False, description="map the saved FAISS index file instead of "
                             "reading it (catalogs larger than RAM; pages shared by replicas "
                             "on one host); changes since the file was written are kept in a "
                             "small in-memory index until `cvsm index` writes a new file")
    device: str = Field("auto", description="torch device the model runs on: auto (CUDA when "
                        "present, else CPU), cpu, cuda, cuda:1, ...")
    backend: str = Field("auto", description="backbone runtime: auto (on CPU the fastest "
                         "runtime measured at start-up among the exact ones and the quality-"
                         "gated bf16/int8 ones; torch on GPU), torch (reference), onnx, "
                         "onnx-int8, openvino, openvino-bf16")
    vocal_gate: bool = Field(False, description="skip the backbone on chunks without singing "
                             "(model/inference/gate.py); changes the vectors, so index and "
                             "service must agree")
    separation: bool = Field(True, description="separate the voice from the music before "
                             "embedding (Spleeter 2-stems, model/separation/), pool only the "
                             "seconds where singing is found, and answer 'no singing found' "
                             "when there are none; on by default for quality (on unseen singers "
                             "mixture clips +0.11 mAP, half-instrumental songs 0.51 -> 0.88), at "
                             "about 3.7x the query time (2.0x Resemblyzer's on a 2-core CPU); "
                             "changes the vectors, so "
                             "index and service must agree; on|off")
    onnx_cache_dir: Path | None = Field(None, description="exported graphs when the model's "
                                        "folder is read-only; default data_dir/models/onnx")
    calibration: Path | None = Field(None, description="cosine -> P(same singer) curve from "
                                     "`cvsm calibrate`; default: the bundled model's")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: SecretStr | None = Field(None, description="when set, writes need X-API-Key")
    read_api_key: SecretStr | None = Field(None, description="when set, search, listing, map "
                                           "and audio need X-API-Key (this key or the write "
                                           "key); audio links in responses are signed")
    audio_url_ttl_s: float = Field(600.0, gt=0, description="how long a signed audio link "
                                   "stays valid (private catalogs)")
    search_rate_limit: str = Field("", description="per-client limit on /v1/search, e.g. "
                                   "'60/minute' (the `limits` syntax); empty: none")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins")
    max_upload_mb: float = Field(20.0, gt=0, description="request body cap, checked while read")
    max_query_seconds: float = Field(120.0, gt=0, description="longest query audio decoded")
    max_track_seconds: float = Field(600.0, gt=0, description="longest catalog track accepted")
    min_audio_seconds: float = Field(0.5, ge=0, description="shorter uploads are refused (422)")
    embed_workers: int = Field(1, ge=1, description="threads that decode and embed")
    embed_queue: int = Field(8, ge=0, description="jobs waiting beyond the workers before 503")
    torch_threads: int = Field(2, ge=1, description="intra-op threads of torch (2-core box)")
    faiss_threads: int = Field(1, ge=1, description="OpenMP threads of FAISS searches")
    follow_seconds: float = Field(0.5, ge=0, description="poll the database's change feed "
                                  "this often, so writes through another API replica (or a "
                                  "job) reach this one's index (0: never)")
    refresh_seconds: float = Field(30.0, ge=0, description="pick up rows that `cvsm index` "
                                   "committed, this often (0: never)")
    map_refresh_seconds: float = Field(30.0, ge=0, description="a changed catalog's map is "
                                       "recomputed at most this often")
    map_points: int = Field(2000, ge=10, description="catalog points shown on the map")
    seed_demo: bool = Field(True, description="cvsm serve: fill an empty catalog with synth data")
    demo_singers: int = 6
    demo_songs: int = 4

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from model.inference.backends import BACKENDS

        if value not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        return value

    @field_validator("extra_models")
    @classmethod
    def _model_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        if not value:
            return value  # the catalog module (FAISS, SQLAlchemy) loads only when needed
        from index.catalog import DEFAULT_MODEL, MODEL_NAME

        for name in value:
            if name == DEFAULT_MODEL or not MODEL_NAME.fullmatch(name):
                raise ValueError(f"model name {name!r}: 1-64 letters, digits, '_', '.', '-', "
                                 f"not {DEFAULT_MODEL!r}")
        return value

    @property
    def db_url(self) -> str:
        """The configured URL, or the default SQLite file inside data_dir (`index.db`)."""
        if self.database_url:
            return self.database_url
        from index.db import sqlite_url  # SQLAlchemy loads only when a URL is needed

        return sqlite_url(self.data_dir)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
