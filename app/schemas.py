"""Response bodies of the API (pydantic), with the examples shown at /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported_format"])
    message: str = Field(examples=["not a recognised audio format"])


class ErrorBody(BaseModel):
    """Every non-2xx answer has this shape."""

    error: ErrorDetail


class TrackOut(BaseModel):
    id: str = Field(examples=["singer00_song01"], description="the stable catalog id")
    title: str | None = Field(None, examples=["song01 sung by singer00"])
    artist: str | None = Field(None, examples=["singer00"])
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"gender": "male"}])
    duration_s: float | None = Field(None, examples=[6.0])
    audio_url: str | None = Field(None, examples=["/v1/tracks/singer00_song01/audio"])


class TrackPage(BaseModel):
    items: list[TrackOut]
    total: int = Field(examples=[24])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[50])


class Hit(TrackOut):
    score: float = Field(examples=[0.93], description="cosine similarity, higher is closer")
    same_singer: float | None = Field(
        None, examples=[0.82], description="calibrated probability that the query's singer "
        "sings this track, at even prior odds (docs/design.md, Calibration); null when the "
        "served model has no calibration")
    match: str | None = Field(None, examples=["very likely the same singer"],
                              description="`same_singer` in words")


class QueryInfo(BaseModel):
    duration_s: float | None = Field(None, examples=[10.0], description="decoded query length")
    track_id: str | None = Field(None, description="set when searching by a catalog track")
    point: list[float] | None = Field(None, examples=[[0.12, -0.4]],
                                      description="the query on the embedding map (GET /v1/map)")
    map_version: int = Field(-1, description="the map `version` whose frame `point` is in")
    used_seconds: list[bool] | None = Field(
        None, examples=[[False, True, True]], description="per 1 s of an uploaded query: "
        "whether the embedding used it (see `selection`)")
    selection: str | None = Field(None, examples=["sound"], description="what `used_seconds` "
                                  "kept: `sound` (every second with sound) or `singing` (the "
                                  "seconds judged sung: vocal separation's detector, or the "
                                  "vocal gate)")
    singing_found: bool | None = Field(
        None, examples=[True], description="whether any second of the upload was judged sung; "
        "false: `results` is empty and `note` says why; null: nothing judged it (separation "
        "and vocal gate both off)")
    note: str | None = Field(None, description="a plain-language remark on the query, e.g. "
                             "\"no singing found: ...\"")


class SearchResponse(BaseModel):
    query: QueryInfo
    model: str = Field("default", description="the model that answered (`GET /v1/models`)")
    results: list[Hit]


class ModelOut(BaseModel):
    name: str = Field(examples=["default"], description="what `model` in a search names")
    fingerprint: str = Field(examples=["3f2a9c0d1b7e4a55"], description="hash of the weights")
    dim: int = Field(examples=[1280])
    count: int = Field(examples=[24], description="tracks this model's index can return")
    index_type: str = Field(examples=["Flat"])
    default: bool


class MapPoint(BaseModel):
    id: str
    x: float
    y: float
    title: str | None = None
    artist: str | None = None


class MapResponse(BaseModel):
    points: list[MapPoint]
    total: int = Field(description="tracks in the catalog; points may be a sample of them")
    version: int = Field(description="catalog version the map reflects (-1: none yet)")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    tracks: int = Field(examples=[24])
    model: str = Field(examples=["3f2a9c0d1b7e4a55"], description="model fingerprint")
