"""Whole songs assembled from a fold's clips: catalogs hold songs with intros, solos and
bridges, not 10 s clips of singing (docs/design.md, Evaluation: whole songs).

Each song of the corpus becomes one track: its clips in clip-id order (the order they were cut
from the song), each followed by an instrumental section, the accompaniment of the same clip
without its voice (mixture - vocals, cut to whole seconds), long enough that instrumental time
is `share` of the song. The vocals version of the song holds the clean vocals in the sung
sections and silence in the instrumental ones. The truth mask (sung seconds) comes from the
clips' own flags, so the perfect-mask ceiling is the stems' ground truth. Deterministic: no
randomness at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.audio.signal import CHUNK
from model.evaluation.data import EvalTrack
from model.evaluation.retrieval import DIRECTIONS, retrieval_metrics

#: Instrumental shares `cvsm evaluate --songs` scores by default.
SHARES = (0.0, 0.3, 0.5)


def _seconds(wave: np.ndarray) -> np.ndarray:
    """`wave` cut to whole seconds (at least one, zero-padded)."""
    n = max(1, len(wave) // CHUNK)
    out = np.zeros(n * CHUNK, np.float32)
    out[: min(len(wave), n * CHUNK)] = wave[: n * CHUNK]
    return out


def _instrumental(clip: EvalTrack, seconds: int) -> np.ndarray:
    """`seconds` of the clip's accompaniment (looped when the clip is shorter)."""
    acc = clip.mixture - (clip.vocals if clip.vocals is not None else 0.0)
    reps = -(-seconds * CHUNK // max(len(acc), 1))
    return np.tile(acc, reps)[: seconds * CHUNK].astype(np.float32)


def assemble_song(clips: list[EvalTrack], share: float) -> EvalTrack:
    """One song from its clips (in order) with `share` of its time instrumental."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"instrumental share must be in [0, 1), not {share}")
    mix, voc, sung = [], [], []
    debt = 0.0  # instrumental seconds owed, carried so the song's share comes out right
    for clip in clips:
        m = _seconds(clip.mixture)
        secs = len(m) // CHUNK
        v = _seconds(clip.vocals) if clip.vocals is not None else m
        flags = np.zeros(secs, bool)
        flags[: min(secs, len(clip.voiced))] = clip.voiced[:secs]
        mix.append(m)
        voc.append(v)
        sung.append(flags)
        debt += secs * share / (1.0 - share)
        gap = int(round(debt))
        if gap:
            debt -= gap
            mix.append(_instrumental(clip, gap))
            voc.append(np.zeros(gap * CHUNK, np.float32))
            sung.append(np.zeros(gap, bool))
    first = clips[0]
    return EvalTrack(f"{first.artist}/{first.song}@{share:g}", first.artist, first.gender,
                     first.song, np.concatenate(mix), np.concatenate(voc), np.concatenate(sung))


def assemble(corpus: list[EvalTrack], share: float) -> list[EvalTrack]:
    """Every song of the corpus, one per singer and song id (tracks without a song id are their
    own song; two singers of one song id are two songs)."""
    songs: dict[tuple[str, str], list[EvalTrack]] = {}
    for t in sorted(corpus, key=lambda t: t.track_id):
        songs.setdefault((t.artist, t.song or t.track_id), []).append(t)
    return [assemble_song(clips, share) for _, clips in sorted(songs.items())]


@dataclass(frozen=True)
class SongScorer:
    """How a system embeds whole songs: `embed(waves, truth)` -> unit vectors; truth None is
    the system as served (its own choice of seconds), a list the stems' perfect mask."""

    embed: Callable[[list[np.ndarray], list[np.ndarray] | None], np.ndarray]
    has_mask: bool = True


def score_songs(songs: list[EvalTrack], scorer: SongScorer, batch: int = 8,
                sources: tuple[str, ...] = ("mixture", "vocals")) -> dict:
    """Retrieval across songs (each song one track, relevant = same singer), as served and
    with the perfect mask, in every direction whose inputs are among `sources`."""
    artists = np.array([s.artist for s in songs])
    ids = np.array([s.track_id for s in songs])  # every other song is a candidate
    out: dict = {"songs": len(songs), "singers": len(set(artists)),
                 "minutes": round(sum(len(s.mixture) for s in songs) / CHUNK / 60, 1)}
    for label, use_truth in (("served", False), ("perfect_mask", True)):
        if use_truth and not scorer.has_mask:
            continue
        vectors = {}
        for source in sources:
            waves = [getattr(s, source) for s in songs]
            parts = [scorer.embed(waves[i:i + batch],
                                  [s.voiced for s in songs[i:i + batch]] if use_truth else None)
                     for i in range(0, len(songs), batch)]
            vectors[source] = np.concatenate(parts)
        out[label] = {name: retrieval_metrics(vectors[q], vectors[c], artists, ids)
                      for name, (q, c) in DIRECTIONS.items() if q in vectors and c in vectors}
    return out
