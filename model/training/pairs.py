"""Anchor/positive sampling for the six systems of the paper (docs/design.md's table).

Indices, offsets and gains are drawn with numpy from a per-step generator (so a resumed run
draws exactly what an uninterrupted one would); the audio is gathered and mixed as batched
tensor operations on the training device, from a `Bank` that is already decoded.

| system   | anchor                          | positive                                 |
| cola     | 1 s of a mixture segment        | another 1 s of the same mixture segment  |
| cola_art | mixture                         | mixture of another track, same artist    |
| mscol    | mixture                         | 1 s of the same segment's vocals         |
| cvsm_art | mixture                         | vocals of a (possibly other) track, same artist |
| cvsm_a   | artificial mixture              | vocals of the same segment               |
| cvsm_ah  | real or artificial (ratio)      | vocals of the same segment               |

Rows of vocals alone (isolated voices) have no real mixture: systems that build artificial
mixtures always lay them over the accompaniment of another row with stems; systems whose anchor
is a real mixture leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.audio.signal import SAMPLE_RATE
from model.training.bank import Bank

#: One training crop: a 1 s chunk, as the encoder sees at inference (plus the model's context).
CROP = SAMPLE_RATE
SEGMENT = 5 * SAMPLE_RATE
#: A 5 s stem window quieter than this RMS is treated as absent (no division by ~0).
SILENT_RMS = 1e-4


@dataclass(frozen=True)
class System:
    anchor: str      # "mixture" | "artificial" | "hybrid"
    positive: str    # "mixture" | "vocals"
    by_artist: bool  # positive drawn from the anchor's artist instead of its segment
    other_track: bool = False  # for by_artist: prefer another track of that artist

    @property
    def needs_stems(self) -> bool:
        return self.positive == "vocals" or self.anchor != "mixture"

    @property
    def mixes(self) -> bool:
        """Builds artificial mixtures, so rows of vocals alone can be anchors."""
        return self.anchor != "mixture"


SYSTEMS: dict[str, System] = {
    "cola": System("mixture", "mixture", by_artist=False),
    "cola_art": System("mixture", "mixture", by_artist=True, other_track=True),
    "mscol": System("mixture", "vocals", by_artist=False),
    "cvsm_art": System("mixture", "vocals", by_artist=True),
    "cvsm_a": System("artificial", "vocals", by_artist=False),
    "cvsm_ah": System("hybrid", "vocals", by_artist=False),
}


@dataclass(frozen=True)
class PairConfig:
    """Sampling parameters; defaults are the paper's."""

    system: str = "cvsm_a"
    gain_min: float = 0.6
    gain_max: float = 0.8
    swap_fraction: float = 0.5      # share of artificial mixtures with foreign accompaniment
    artificial_ratio: float = 0.5   # cvsm_ah: share of artificial (vs real) anchors
    min_singing: float = 0.25       # a vocal positive with less singing is "silence"


@dataclass
class Batch:
    anchors: torch.Tensor    # (B, crop) float32
    positives: torch.Tensor  # (B, crop) float32
    silent: torch.Tensor     # (B,) bool: positive holds no singing
    anchor_tracks: np.ndarray    # (B,) bank track index of each anchor (for checks and logs)
    positive_tracks: np.ndarray  # (B,) bank track index of each positive
    anchor_at: np.ndarray        # (B,) bank sample where each anchor crop starts (its vocals)
    positive_at: np.ndarray      # (B,) bank sample where each positive crop starts


class PairSampler:
    """Draws batches for one system from the tracks `track_idx` of a bank; crops of `crop`
    samples (1 s, or 1 s and the model's context on each side)."""

    def __init__(self, bank: Bank, track_idx: np.ndarray, cfg: PairConfig,
                 device: torch.device, batch_size: int, crop: int = CROP) -> None:
        if cfg.system not in SYSTEMS:
            raise ValueError(f"unknown system {cfg.system!r}; choose from {sorted(SYSTEMS)}")
        self.bank, self.cfg, self.device, self.batch_size = bank, cfg, device, batch_size
        self.crop = crop
        self.system = SYSTEMS[cfg.system]
        tracks = np.asarray(track_idx)
        tracks = tracks[bank.lengths[tracks] >= crop]  # a crop never runs into the next track
        self.vocals_only = bank.vocals_only
        if not self.system.mixes:  # an isolated voice has no real mixture to be an anchor
            tracks = tracks[~self.vocals_only[tracks]]
        if len(tracks) == 0:
            raise ValueError(f"{cfg.system} has no tracks of at least {crop / SAMPLE_RATE:g} s "
                             "to sample (rows of vocals alone need a system that builds "
                             "artificial mixtures)")
        self.tracks = tracks
        self.weights = self._length_weights(tracks)
        self.donors = tracks[~self.vocals_only[tracks]]  # tracks with an accompaniment stem
        if len(self.donors) == 0:  # e.g. a validation split of isolated voices only: any
            # accompaniment of the bank will do (it carries no singer of the split)
            self.donors = np.flatnonzero(~self.vocals_only & (bank.lengths >= crop))
        if len(self.donors) == 0 and self.system.mixes:
            raise ValueError("rows of vocals alone need accompaniment from rows with stems; "
                             "the manifests have none")
        self.donor_weights = self._length_weights(self.donors)
        artists = np.array([bank.tracks[i].artist for i in self.tracks])
        self.by_artist = {a: self.tracks[artists == a] for a in np.unique(artists)}
        self.audio = {name: self._to_device(arr) for name, arr in bank.stems.items()}
        self._offsets = torch.arange(crop, device=device)

    def _length_weights(self, tracks: np.ndarray) -> np.ndarray:
        lengths = self.bank.lengths[tracks].astype(np.float64)
        return lengths / max(lengths.sum(), 1.0)

    def _to_device(self, arr: np.ndarray) -> torch.Tensor | np.ndarray:
        if self.device.type == "cpu":
            return arr  # gather straight from the memmap
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    # -- index drawing (numpy) ------------------------------------------------------------

    def _segments(self, rng: np.random.Generator, tracks: np.ndarray):
        """Random 5 s segment (shorter tracks: the whole track) of each track."""
        length = self.bank.lengths[tracks]
        seg_len = np.minimum(length, SEGMENT)
        seg_start = self.bank.starts[tracks] + (rng.random(len(tracks)) *
                                                (length - seg_len + 1)).astype(np.int64)
        return seg_start, seg_len

    def _crop(self, rng: np.random.Generator, seg_start: np.ndarray, seg_len: np.ndarray):
        return seg_start + (rng.random(len(seg_start)) * (seg_len - self.crop + 1)).astype(
            np.int64)

    def _scale(self, stem: str, seg_start: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
        """Gain that gives the segment the RMS of a unit-norm 5 s segment (0 if silent)."""
        energy = self.bank.window_energy(stem, seg_start, seg_len)
        rms = np.sqrt(energy / seg_len)
        return np.where(rms > SILENT_RMS, 1.0 / np.sqrt(SEGMENT) / np.maximum(rms, 1e-12), 0.0)

    def _partner_tracks(self, rng: np.random.Generator, tracks: np.ndarray) -> np.ndarray:
        """A track by the same artist (another one where the artist has several)."""
        out = np.empty_like(tracks)
        for i, t in enumerate(tracks):
            pool = self.by_artist[self.bank.tracks[t].artist]
            if self.system.other_track and len(pool) > 1:
                pool = pool[pool != t]
            out[i] = pool[rng.integers(len(pool))]
        return out

    # -- audio gathering (device) -----------------------------------------------------------

    def _gather(self, stem: str, starts: np.ndarray, scale: np.ndarray) -> torch.Tensor:
        audio = self.audio[stem]
        gain = torch.as_tensor(scale, dtype=torch.float32, device=self.device)[:, None]
        if isinstance(audio, np.ndarray):
            idx = starts[:, None] + np.arange(self.crop)[None, :]
            return torch.from_numpy(audio[idx].astype(np.float32)) * gain
        idx = torch.as_tensor(starts, device=self.device)[:, None] + self._offsets[None, :]
        return audio[idx].float() * gain

    def sample(self, rng: np.random.Generator) -> Batch:
        b = self.batch_size
        tracks = rng.choice(self.tracks, size=b, p=self.weights)
        seg_start, seg_len = self._segments(rng, tracks)
        anchor_at = self._crop(rng, seg_start, seg_len)
        anchors = self._anchors(rng, tracks, seg_start, seg_len, anchor_at)
        partners = tracks
        if self.system.by_artist:
            partners = self._partner_tracks(rng, tracks)
            seg_start, seg_len = self._segments(rng, partners)
        pos_at = self._crop(rng, seg_start, seg_len)
        stem = self.system.positive
        scale = self._scale(stem, seg_start, seg_len)
        positives = self._gather(stem, pos_at, scale)
        if stem == "vocals":
            silent = (self.bank.active_fraction(pos_at, self.crop) < self.cfg.min_singing) | (
                scale == 0)
        else:
            silent = np.zeros(b, dtype=bool)
        return Batch(anchors, positives, torch.as_tensor(silent, device=self.device), tracks,
                     partners, anchor_at, pos_at)

    def _anchors(self, rng: np.random.Generator, tracks: np.ndarray, seg_start: np.ndarray,
                 seg_len: np.ndarray, at: np.ndarray) -> torch.Tensor:
        kind = self.system.anchor
        b = len(seg_start)
        alone = self.vocals_only[tracks]
        artificial = np.zeros(b, bool) if kind == "mixture" else (
            np.ones(b, bool) if kind == "artificial"
            else (rng.random(b) < self.cfg.artificial_ratio) | alone)
        real = self._gather("mixture", at, self._scale("mixture", seg_start, seg_len))
        if not artificial.any():
            return real
        voc = self._gather("vocals", at, self._scale("vocals", seg_start, seg_len))
        acc_start, acc_len, acc_at = seg_start.copy(), seg_len.copy(), at.copy()
        swap = (rng.random(b) < self.cfg.swap_fraction) | alone
        if swap.any():
            other = rng.choice(self.donors, size=int(swap.sum()), p=self.donor_weights)
            o_start, o_len = self._segments(rng, other)
            # the same offset if it fits
            rel = np.minimum(at[swap] - seg_start[swap], o_len - self.crop)
            acc_start[swap], acc_len[swap], acc_at[swap] = o_start, o_len, o_start + rel
        acc = self._gather("accompaniment", acc_at, self._scale("accompaniment", acc_start,
                                                                acc_len))
        w = torch.as_tensor(rng.uniform(self.cfg.gain_min, self.cfg.gain_max, b),
                            dtype=torch.float32, device=self.device)[:, None]
        mixed = w * acc + (1 - w**2) * voc
        pick = torch.as_tensor(artificial, device=self.device)[:, None]
        return torch.where(pick, mixed, real)
