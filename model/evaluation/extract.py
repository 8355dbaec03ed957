"""Per-1 s-chunk and per-track embeddings of a corpus, from any feature extractor.

An extractor embeds block-normalised 1 s chunks (`embed_chunks`; with its `context`, when it has
one, of neighbouring samples on each side, as the Embedder cuts them) and may also embed a whole
track (`embed_track`, for baselines defined on the whole clip such as MFCC statistics, or
`embed_tracks` for many clips per call); when it does not, a track is the L2-normalised mean of
its sung chunks (docs/design.md). Chunks of many tracks share encoder batches, a group of tracks at
a time so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.preprocessing import StandardScaler, normalize

from model.audio.signal import chunk, pool
from model.evaluation.data import EvalTrack

#: Chunks embedded per call: bounds the waveform memory (8192 s of audio = 0.5 GB float32).
GROUP_CHUNKS = 8192
#: Seconds of audio per whole-track call: a progress step every few seconds of work.
TRACK_GROUP_CHUNKS = 512
INPUTS = ("mixture", "vocals")


class FeatureExtractor(Protocol):
    """What the harness needs of a system: a name and chunk embeddings (track ones optional)."""

    name: str
    #: z-score dimensions over the corpus before cosine (hand-crafted features of mixed scales).
    standardise: bool

    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray: ...

    def embed_track(self, wave: np.ndarray) -> np.ndarray | None: ...


@dataclass
class Features:
    """One input kind of one system: chunk embeddings per track and track embeddings."""

    chunks: list[np.ndarray]
    tracks: np.ndarray


def _chunk(wave: np.ndarray, count: int, context: int = 0) -> np.ndarray:
    pieces = chunk(wave, context)
    assert len(pieces) == count, "signal.n_chunks must agree with signal.chunk"
    return pieces


def _groups(corpus: list[EvalTrack], limit: int = GROUP_CHUNKS) -> Iterable[list[int]]:
    group: list[int] = []
    size = 0
    for i, t in enumerate(corpus):
        group.append(i)
        size += t.n_chunks
        if size >= limit:
            yield group
            group, size = [], 0
    if group:
        yield group


def whole_tracks(corpus: list[EvalTrack], extractor: FeatureExtractor, waves: list[np.ndarray],
                 progress: Callable[[Iterable], Iterable] = iter) -> np.ndarray | None:
    """Whole-clip embeddings when the extractor defines them (None otherwise): through
    `embed_tracks` (many clips per call, a group at a time) when it has one, else one
    `embed_track` call per clip."""
    batched = getattr(extractor, "embed_tracks", None)
    if batched is not None and batched([]) is not None:  # [] costs nothing, says if defined
        out: list[np.ndarray] = []
        for group in progress(list(_groups(corpus, TRACK_GROUP_CHUNKS))):
            out += batched([waves[i] for i in group])
        return np.stack(out)
    whole = [extractor.embed_track(w) for w in waves]
    return np.stack(whole) if all(v is not None for v in whole) else None


def extract(corpus: list[EvalTrack], extractor: FeatureExtractor, source: str,
            progress: Callable[[Iterable], Iterable] = iter, chunks: bool = True) -> Features:
    """Embed every track's `source` ("mixture" or "vocals"); track vectors not yet normalised.
    `chunks=False` (retrieval only) skips the chunk embeddings when whole-track ones exist."""
    waves = [getattr(t, source) for t in corpus]
    if any(w is None for w in waves):
        raise ValueError(f"some tracks have no {source} signal")
    tracks = whole_tracks(corpus, extractor, waves, progress)
    if tracks is not None and not chunks:
        return Features(chunks=[], tracks=tracks)
    per_track: list[np.ndarray] = [np.empty(0)] * len(corpus)
    context = getattr(extractor, "context", 0)
    for group in progress(list(_groups(corpus))):
        pieces = [_chunk(waves[i], corpus[i].n_chunks, context) for i in group]
        emb = extractor.embed_chunks(np.concatenate(pieces))
        bounds = np.cumsum([0] + [len(p) for p in pieces])
        for j, i in enumerate(group):
            per_track[i] = emb[bounds[j]:bounds[j + 1]]
    if tracks is None:
        tracks = np.stack([pool(c, t.voiced) for c, t in zip(per_track, corpus, strict=True)])
    return Features(chunks=per_track, tracks=tracks)


def _standardise(features: dict[str, Features]) -> None:
    """z-score with one scaler over all inputs: a catalog cannot know what a query will be, so
    mixtures and vocals share one space (per-input scalers inflate vocals->mix P@1 0.32->0.56
    for MFCC on MIR-1K)."""
    chunks = [c for f in features.values() for c in f.chunks]
    if chunks:  # none in a retrieval-only run of a whole-track system
        chunk_scaler = StandardScaler().fit(np.concatenate(chunks))
        for f in features.values():
            f.chunks = [chunk_scaler.transform(c).astype(np.float32) for c in f.chunks]
    track_scaler = StandardScaler().fit(np.concatenate([f.tracks for f in features.values()]))
    for f in features.values():
        f.tracks = track_scaler.transform(f.tracks)


def extract_all(corpus: list[EvalTrack], extractor: FeatureExtractor,
                progress: Callable[[Iterable], Iterable] = iter,
                chunks: bool = True) -> dict[str, Features]:
    """Features for mixture input and, when every track has vocals, for vocals input."""
    inputs = [s for s in INPUTS if all(getattr(t, s) is not None for t in corpus)]
    features = {s: extract(corpus, extractor, s, progress, chunks) for s in inputs}
    if extractor.standardise:
        _standardise(features)
    for f in features.values():
        f.tracks = normalize(f.tracks).astype(np.float32)
    return features
