"""Which trials a listening study holds (issue 16): for each query, each served model's top
candidates, paired rank by rank between every two models.

A query is a catalog track (its stored vectors of each model) or an outside clip (stored like an
upload, embedded by each model). Candidates never include the query's own track or another
excerpt of its song (the `song` metadata), as in the retrieval evaluation: hearing the same
recording again would decide the trial by itself. When two models return the same track at the
same rank there is nothing to compare, so that trial is left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from index.catalog import Catalog
from index.studies import TrialSpec
from index.uploads import content_digest
from model.audio.decode import decode


@dataclass(frozen=True)
class StudyQuery:
    """What one query is: its reference, kind, and its vector from each model by name."""

    ref: str
    kind: str
    vectors: dict[str, np.ndarray]
    exclude_ids: tuple[str, ...] = ()
    song: str | None = None


@dataclass
class Plan:
    trials: list[TrialSpec] = field(default_factory=list)
    #: (query, model pair, rank) slots where both models returned the same track.
    identical: int = 0
    #: queries the models had too few candidates for (a small catalog, or missing vectors).
    short: int = 0


class QueryError(ValueError):
    """A query that cannot be used (unknown track, a model has no vector of it, bad audio)."""


def track_query(catalog: Catalog, track_id: str, models: list[str]) -> StudyQuery:
    """A catalog track as a query: each model's stored vector of it."""
    record = catalog.repository.get(track_id)
    if record is None:
        raise QueryError(f"no track {track_id!r} in the catalog")
    vectors = {}
    for name in models:
        vector = catalog.repository.vector_of(track_id, catalog.model(name).fingerprint)
        if vector is None:
            raise QueryError(f"model {name!r} has no vector of track {track_id!r}: index it "
                             "with `cvsm index --extra-model`")
        vectors[name] = vector
    return StudyQuery(track_id, "track", vectors, (track_id,), record.metadata.get("song"))


def clip_query(catalog: Catalog, path: Path, models: list[str],
               max_seconds: float = 600.0) -> StudyQuery:
    """An outside clip as a query: stored with the uploads (so the study page can play it)
    and embedded by each model."""
    data = Path(path).read_bytes()
    samples = decode(data, max_seconds=max_seconds).samples
    stored = catalog.uploads.store(data, content_digest(data), Path(path).name)
    vectors = {name: catalog.model(name).embedder.embed_waveform(samples) for name in models}
    return StudyQuery(catalog.uploads.source_of(stored), "upload", vectors)


def plan_trials(catalog: Catalog, models: list[str], queries: list[StudyQuery],
                per_query: int) -> Plan:
    """Rank-r candidate of model A against rank-r candidate of model B, for r < per_query,
    every query and every pair of models."""
    plan = Plan()
    for query in queries:
        ranked = {name: [rec.id for rec, _ in catalog.search(
            query.vectors[name], per_query, exclude_ids=query.exclude_ids,
            exclude_song=query.song, model=name)] for name in models}
        if min(len(r) for r in ranked.values()) < per_query:
            plan.short += 1
        for a, b in combinations(models, 2):
            for cand_a, cand_b in zip(ranked[a], ranked[b], strict=False):
                if cand_a == cand_b:
                    plan.identical += 1
                    continue
                plan.trials.append(TrialSpec(query.ref, a, b, cand_a, cand_b, query.kind))
    return plan
