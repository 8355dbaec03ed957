"""The whole protocol for one system on one corpus: probes over seeds, curves, similarity,
retrieval; returns one JSON-ready dict (means and standard deviations over seeds)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
from joblib import Parallel, delayed

from model.audio.signal import SAMPLE_RATE
from model.evaluation.data import EvalTrack
from model.evaluation.extract import Features
from model.evaluation.probes import ProbeConfig, span_scores, train_probe
from model.evaluation.retrieval import retrieval_suite
from model.evaluation.similarity import similarity_metrics
from model.evaluation.splits import Split, artist_split, gender_split, reduce_train

FRACTIONS = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class EvalConfig:
    """How much work: seeds, probe epochs and similarity episodes (`quick` shrinks all)."""

    seeds: int = 5
    episodes: int = 50
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    fractions: tuple[float, ...] = FRACTIONS
    workers: int = 1

    @classmethod
    def make(cls, quick: bool, seeds: int | None = None, episodes: int | None = None,
             probe_device: str = "cpu", workers: int = 1) -> EvalConfig:
        if quick:
            return cls(seeds=seeds or 2, episodes=episodes or 10, fractions=(0.5, 1.0),
                       probe=ProbeConfig(max_epochs=10, patience=2, device=probe_device),
                       workers=workers)
        return cls(seeds=seeds or 5, episodes=episodes or 50,
                   probe=ProbeConfig(device=probe_device), workers=workers)


def _stack(tracks: list[np.ndarray], voiced: list[np.ndarray], idx: np.ndarray,
           labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sung chunks of tracks `idx` with their tracks' labels repeated."""
    xs = [tracks[i][voiced[i]] for i in idx]
    ys = [np.full(len(x), labels[i]) for x, i in zip(xs, idx, strict=True)]
    return np.concatenate(xs), np.concatenate(ys)


def probe_task(chunks: list[np.ndarray], voiced: list[np.ndarray], labels: np.ndarray,
               split: Split, n_classes: int, seed: int, config: ProbeConfig) -> dict:
    """Train on the split's train tracks, score its test tracks at every span."""
    x_tr, y_tr = _stack(chunks, voiced, split.train, labels)
    if len(split.val):
        x_va, y_va = _stack(chunks, voiced, split.val, labels)
    else:  # too few tracks for a validation part: stop on a held-back tenth of train chunks
        hold = np.random.default_rng(seed).random(len(x_tr)) < 0.1
        if hold.any() and not hold.all():
            x_va, y_va, x_tr, y_tr = x_tr[hold], y_tr[hold], x_tr[~hold], y_tr[~hold]
        else:
            x_va, y_va = x_tr, y_tr
    probe = train_probe(x_tr, y_tr, x_va, y_va, n_classes, seed, config)
    probs = [probe.proba(chunks[i][voiced[i]]) for i in split.test]
    return span_scores(probs, labels[split.test])


def mean_std(runs: list[dict]) -> dict:
    """Nested dicts of floats (one per seed) -> the same nesting with {mean, std}."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: mean_std([r[k] for r in runs]) for k in first}
    values = np.array(runs, dtype=float)
    return {"mean": float(np.nanmean(values)), "std": float(np.nanstd(values))}


def _encode(values: np.ndarray) -> tuple[np.ndarray, int]:
    names, codes = np.unique(values, return_inverse=True)
    return codes, len(names)


@dataclass(frozen=True)
class Labels:
    """Per-track labels as arrays (codes for the probes, names for splits and retrieval)."""

    artists: np.ndarray
    genders: np.ndarray
    songs: np.ndarray
    artist_codes: np.ndarray
    gender_codes: np.ndarray
    n_artists: int
    n_genders: int

    @classmethod
    def of(cls, corpus: list[EvalTrack]) -> Labels:
        artists = np.array([t.artist for t in corpus])
        genders = np.array([t.gender for t in corpus])
        kinds = sorted(set(genders[genders != ""]))
        artist_codes, n_artists = _encode(artists)
        return cls(artists, genders, np.array([t.song for t in corpus]), artist_codes,
                   np.searchsorted(kinds, genders),  # unlabelled tracks never enter a split
                   n_artists, len(kinds))


def seed_run(feats: Features, voiced: list[np.ndarray], labels: Labels, seed: int,
             config: EvalConfig) -> dict:
    """One seed of every probe and the similarity episodes (independent: runs in a worker)."""
    out: dict = {}
    gsplit = gender_split(labels.artists, labels.genders, seed)
    if gsplit is not None:
        out["gender"] = probe_task(feats.chunks, voiced, labels.gender_codes, gsplit,
                                   labels.n_genders, seed, config.probe)
    split = artist_split(labels.artists, seed)
    out["artist"] = probe_task(feats.chunks, voiced, labels.artist_codes, split,
                               labels.n_artists, seed, config.probe)
    out["curve"] = {
        f"{round(100 * f)}": out["artist"] if f >= 1 else probe_task(
            feats.chunks, voiced, labels.artist_codes,
            reduce_train(split, labels.artists, f, seed), labels.n_artists, seed, config.probe)
        for f in config.fractions}
    out["sim"] = similarity_metrics(feats.tracks, labels.artists, labels.songs,
                                    config.episodes, seed)
    return out


def evaluate(corpus: list[EvalTrack], features: dict[str, Features], config: EvalConfig,
             progress: Callable[[Iterable], Iterable] = iter) -> dict:
    """Every section of the protocol for one system's features of `corpus`; seeds run in
    `config.workers` processes (probes are single-threaded, so seeds scale with cores)."""
    labels = Labels.of(corpus)
    voiced = [t.voiced for t in corpus]
    results: dict = {"gender_id": {}, "artist_id": {}, "training_data_curve": {},
                     "similarity": {}, "skipped": []}
    for source, feats in features.items():
        jobs = (delayed(seed_run)(feats, voiced, labels, seed, config)
                for seed in range(config.seeds))
        runs = list(progress(Parallel(n_jobs=config.workers, return_as="generator")(jobs)))
        if all("gender" in r for r in runs):
            results["gender_id"][source] = mean_std([r["gender"] for r in runs])
        results["artist_id"][source] = mean_std([r["artist"] for r in runs])
        results["training_data_curve"][source] = mean_std([r["curve"] for r in runs])
        results["similarity"][source] = mean_std([r["sim"] for r in runs])
    if not results["gender_id"]:
        results["skipped"].append("gender_id: needs two genders with two or more singers each")
    results["context_curve"] = context_curve(results)
    results["retrieval"] = retrieval_suite({k: f.tracks for k, f in features.items()},
                                           labels.artists, labels.songs)
    return results


def context_curve(results: dict) -> dict:
    """Accuracy (mean over seeds) against input context, from the probes' span scores."""
    return {task: {source: {span: scores["accuracy"]["mean"] for span, scores in spans.items()}
                   for source, spans in results[task].items()}
            for task in ("artist_id", "gender_id")}


def corpus_summary(corpus: list[EvalTrack]) -> dict:
    """What was evaluated: counts, minutes, singers (for the report's setup section)."""
    chunks = sum(t.n_chunks for t in corpus)
    return {"tracks": len(corpus), "artists": sorted({t.artist for t in corpus}),
            "songs": len({t.song for t in corpus if t.song}),
            "minutes": round(sum(len(t.mixture) for t in corpus) / SAMPLE_RATE / 60, 2),
            "chunks": chunks, "sung_chunks": int(sum(t.voiced.sum() for t in corpus)),
            "has_vocals": all(t.vocals is not None for t in corpus)}


#: The sections a retrieval-only run leaves out (they hold most of the protocol's minutes).
PROTOCOL_ONLY = ("gender_id", "artist_id", "training_data_curve", "context_curve", "similarity")


def retrieval_only(corpus: list[EvalTrack], features: dict[str, Features]) -> dict:
    """Only the retrieval suite: what an ablation over many systems and folds needs, in seconds
    instead of the probes' and episodes' minutes."""
    labels = Labels.of(corpus)
    return {"retrieval": retrieval_suite({k: f.tracks for k, f in features.items()},
                                         labels.artists, labels.songs),
            "skipped": [f"{', '.join(PROTOCOL_ONLY)}: --retrieval-only"]}


def score_system(corpus: list[EvalTrack], system: object, config: EvalConfig,
                 progress: Callable[[Iterable], Iterable] = iter,
                 only_retrieval: bool = False) -> tuple[dict, dict]:
    """Extract one system's features and run the protocol (or only its retrieval suite);
    returns (results, features)."""
    from model.evaluation.extract import extract_all

    start = time.perf_counter()
    features = extract_all(corpus, system, progress, chunks=not only_retrieval)
    extracted = time.perf_counter()
    if only_retrieval:
        results = retrieval_only(corpus, features)
    else:
        results = evaluate(corpus, features, config, progress)
    results["corpus"] = corpus_summary(corpus)
    results["config"] = {"seeds": config.seeds, "episodes": config.episodes,
                         "fractions": list(config.fractions), "probe": asdict(config.probe),
                         "workers": config.workers, "retrieval_only": only_retrieval}
    results["timing_s"] = {"extract": round(extracted - start, 1),
                           "protocol": round(time.perf_counter() - extracted, 1)}
    return results, features
