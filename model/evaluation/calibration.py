"""From a cosine to a probability a person can read: "same singer?", learned on unseen voices.

A raw cosine says little on its own (on the demo catalog every hit scores 0.98-1.00). The
calibration maps the served model's cosine between a query and a catalog track to the
probability that both are the same singer, fitted on singers the model never trained on
(docs/design.md, Calibration):

- pairs: every (query, catalog track) of different songs, queries being mixtures and isolated
  vocals, the catalog mixtures (what the service compares), embedded exactly as the service
  embeds them (sound mask, no labels);
- fit: isotonic regression (scikit-learn), increasing in the cosine, with the two classes
  weighted equally, so the probability reads at even prior odds: it does not depend on how
  many singers a fold (or a catalog) holds;
- honesty: the reliability diagram and expected calibration error (ECE) come from cross-fitting
  by singer (fit on half the singers, score pairs of the other half, and the reverse), pooled
  over every way of halving the singers (up to MAX_HALVINGS), since one split can be far luckier
  or unluckier than another; the shipped curve is then fitted on all of them.

The result is a small JSON (knots of the curve, the model fingerprint, how it was made), read at
serve time with `np.interp`: serving needs neither scikit-learn nor this module's plots.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model.files import atomic_write_text

#: Plain-language labels by calibrated probability (lowest bound first wins from the top).
LABELS = ((0.8, "very likely the same singer"), (0.5, "probably the same singer"),
          (0.2, "a similar voice"), (0.0, "a different voice"))
BINS = 10
#: Halvings of the singers that cross-fitting scores (8 singers have exactly 35).
MAX_HALVINGS = 35
#: Which pairs fit the curve: all of them, or only pairs of two singers of one gender.
FIT_PAIRS = ("all", "same-gender")


@dataclass
class Calibration:
    """An increasing cosine -> P(same singer) curve for one model (by fingerprint)."""

    fingerprint: str
    cosines: list[float]
    probabilities: list[float]
    info: dict = field(default_factory=dict)

    def probability(self, cosine: float | np.ndarray) -> float | np.ndarray:
        """P(same singer) at even prior odds; clipped to the fitted range."""
        return np.interp(cosine, self.cosines, self.probabilities)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        data = json.loads(Path(path).read_text())
        if len(data["cosines"]) != len(data["probabilities"]) or not data["cosines"]:
            raise ValueError(f"{path}: not a calibration curve")
        return cls(data["fingerprint"], data["cosines"], data["probabilities"],
                   data.get("info", {}))


def label(probability: float) -> str:
    """The plain-language reading of a calibrated probability."""
    return next(text for bound, text in LABELS if probability >= bound)


def pair_table(queries: dict[str, np.ndarray], catalog: np.ndarray, artists: Sequence[str],
               songs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, catalog) pair of different songs, for each query kind: cosines, same-
    singer labels and the two tracks' singers (for cross-fitting)."""
    artists, songs = np.asarray(artists), np.asarray(songs)
    allowed = songs[:, None] != songs[None, :]
    np.fill_diagonal(allowed, False)
    qi, ci = np.nonzero(allowed)
    scores = np.concatenate([np.sum(q[qi] * catalog[ci], axis=1) for q in queries.values()])
    qi, ci = np.tile(qi, len(queries)), np.tile(ci, len(queries))
    return scores, artists[qi] == artists[ci], artists[qi], artists[ci]


def _weights(labels: np.ndarray) -> np.ndarray:
    """Each class sums to one half: probabilities read at even prior odds."""
    pos = max(int(labels.sum()), 1)
    neg = max(int((~labels).sum()), 1)
    return np.where(labels, 0.5 / pos, 0.5 / neg)


def fit_curve(scores: np.ndarray, labels: np.ndarray, knots: int = 64) -> tuple[list, list]:
    """Isotonic fit, thinned to at most `knots` points (interpolation between them is linear)."""
    from sklearn.isotonic import IsotonicRegression

    if labels.all() or not labels.any():
        raise ValueError("calibration needs both same-singer and different-singer pairs")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(scores, labels.astype(float), sample_weight=_weights(labels))
    xs = np.quantile(scores, np.linspace(0, 1, knots))
    xs = np.unique(np.round(xs, 6))
    return xs.tolist(), np.round(iso.predict(xs), 6).tolist()


def halvings(singers: Sequence[str], limit: int = MAX_HALVINGS) -> list[tuple[str, ...]]:
    """Splits of the singers into two halves, each split once (named by the first singer's
    half), the every-other-singer split first. One split alone is a noisy estimate: over the
    35 halvings of 8 RAVDESS singers one model's ECE ran from 0.010 to 0.092. With more
    than `limit` halvings, `limit` of them are drawn with a fixed seed."""
    names = sorted(set(singers))
    first = tuple(names[::2])
    size = len(names) // 2
    if math.comb(len(names) - 1, size - 1) <= limit:
        rest = [h for h in itertools.combinations(names, size) if names[0] in h and h != first]
        return [first, *rest]
    rng = np.random.default_rng(0)
    out = {first}
    while len(out) < limit:
        half = set(rng.choice(names, size, replace=False).tolist())
        if names[0] in half:  # the split's name; the other draws name the same splits again
            out.add(tuple(sorted(half)))
    return [first, *sorted(out - {first})]


def halving_sides(half: Sequence[str], singer_a: np.ndarray,
                  singer_b: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, score) pair masks of one halving, both ways round: pairs within one half fit the
    curve, pairs within the other are scored; pairs across the halves are left out."""
    in_a, in_b = np.isin(singer_a, half), np.isin(singer_b, half)
    return [((in_a == side) & (in_b == side), (in_a != side) & (in_b != side))
            for side in (True, False)]


def cross_fitted_splits(scores: np.ndarray, labels: np.ndarray, singer_a: np.ndarray,
                        singer_b: np.ndarray, fit: np.ndarray | None = None,
                        score: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per halving of the singers: predictions for pairs within each half from a curve fitted
    on the other half (pairs across halves are left out), as (probabilities, labels). `fit`
    and `score` (pair masks) narrow which pairs fit the curves and which are scored, e.g. to
    same-gender pairs."""
    everything = np.ones(len(scores), bool)
    fit = everything if fit is None else fit
    score = everything if score is None else score
    out = []
    for half in halvings(np.concatenate([singer_a, singer_b]).tolist()):
        probs, truth = [], []
        for train, test in halving_sides(half, singer_a, singer_b):
            train = train & fit
            if labels[train].all() or not labels[train].any():
                continue  # e.g. one man and one woman: no same-gender pair of two singers
            xs, ys = fit_curve(scores[train], labels[train])
            probs.append(np.interp(scores[test & score], xs, ys))
            truth.append(labels[test & score])
        if probs:
            out.append((np.concatenate(probs), np.concatenate(truth)))
    if not out:
        raise ValueError("no half of the singers holds both same-singer and other-singer "
                         "pairs to fit on: more singers are needed")
    return out


def cross_fitted(scores: np.ndarray, labels: np.ndarray, singer_a: np.ndarray,
                 singer_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted predictions of every halving, pooled: (probabilities, labels)."""
    return pooled(cross_fitted_splits(scores, labels, singer_a, singer_b))


def pooled(splits: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The (probabilities, labels) of several cross-fitted splits, concatenated."""
    return np.concatenate([p for p, _ in splits]), np.concatenate([t for _, t in splits])


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Reliability table and expected calibration error, both class-balanced (as fitted)."""
    weights = _weights(labels)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges) - 1, 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        w = weights[sel].sum()
        if w <= 0:
            continue
        predicted = float(np.average(probs[sel], weights=weights[sel]))
        observed = float(np.average(labels[sel], weights=weights[sel]))
        ece += w / weights.sum() * abs(predicted - observed)
        rows.append({"bin": [round(edges[b], 2), round(edges[b + 1], 2)], "pairs": int(sel.sum()),
                     "predicted": round(predicted, 4), "observed": round(observed, 4),
                     "weight": round(float(w / weights.sum()), 4)})
    return {"ece": round(float(ece), 4), "bins": rows}


def plot_reliability(table: dict, curve: Calibration, path: str | Path) -> None:
    """Reliability diagram (cross-fitted) beside the shipped cosine -> probability curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    pred = [r["predicted"] for r in table["bins"]]
    obs = [r["observed"] for r in table["bins"]]
    ax1.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    splits = table.get("halvings", {}).get("count", 1)
    ax1.plot(pred, obs, "o-", label=f"all pairs, cross-fitted by singer over {splits} "
             f"halvings (ECE {table['ece']:.3f})")
    if "same_gender" in table:
        within = table["same_gender"]
        ax1.plot([r["predicted"] for r in within["bins"]], [r["observed"] for r in within["bins"]],
                 "s-", c="C2", label=f"pairs of one gender only (ECE {within['ece']:.3f})")
    ax1.set(xlabel="predicted P(same singer)", ylabel="observed share of same-singer pairs",
            title="Reliability (class-balanced)", xlim=(0, 1), ylim=(0, 1))
    ax1.legend(loc="upper left", fontsize=8)
    ax2.plot(curve.cosines, curve.probabilities, c="C1")
    for bound, text in LABELS[:-1]:
        ax2.axhline(bound, c="grey", lw=0.6, ls=":")
        ax2.text(curve.cosines[0], bound + 0.01, text, fontsize=7, color="grey")
    ax2.set(xlabel="cosine (served embedding)", ylabel="P(same singer)", ylim=(0, 1),
            title=f"Shipped curve, model {curve.fingerprint[:8]}\nfitted on "
            + ("pairs of one gender" if curve.info.get("fit_pairs") == "same-gender"
               else "all pairs"))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def same_gender_pairs(singer_a: np.ndarray, singer_b: np.ndarray,
                      gender_of: dict[str, str]) -> np.ndarray | None:
    """Pairs whose two singers share a known gender; None when any singer's gender is unknown
    (then nothing can be said within one gender)."""
    if not all(gender_of.get(s) for s in np.unique(np.concatenate([singer_a, singer_b]))):
        return None
    genders = np.vectorize(gender_of.get, otypes=[object])
    return genders(singer_a) == genders(singer_b)


def _scored(splits: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Pooled reliability of cross-fitted splits, with the spread of ECE over the halvings."""
    table = reliability(*pooled(splits))
    eces = [reliability(p, t)["ece"] for p, t in splits]
    table["halvings"] = {"count": len(eces), "first": eces[0], "median": float(np.median(eces)),
                         "min": min(eces), "max": max(eces)}
    return table


def calibrate(embedder: object, mixtures: list[np.ndarray], vocals: list[np.ndarray] | None,
              artists: Sequence[str], songs: Sequence[str], source: str = "",
              genders: Sequence[str] | None = None, fit_pairs: str = "all") -> tuple[
                  Calibration, dict]:
    """Embed a held-out corpus as the service would, fit the curve on all its singers and
    measure calibration by cross-fitting; returns (curve, reliability table).

    With `genders` (per track) the table also scores pairs of one gender alone, the hard case
    a catalog of one gender poses: a man and a woman are easy to tell apart, so pooled pairs
    can look calibrated while same-gender ones read overconfident. `fit_pairs="same-gender"`
    fits the curves on those pairs only."""
    if fit_pairs not in FIT_PAIRS:
        raise ValueError(f"fit_pairs must be one of {FIT_PAIRS}, not {fit_pairs!r}")
    catalog = embedder.embed_many(mixtures)
    queries = {"mixture": catalog}
    if vocals is not None:
        queries["vocals"] = embedder.embed_many(vocals)
    scores, labels, sa, sb = pair_table(queries, catalog, artists, songs)
    same = same_gender_pairs(sa, sb, dict(zip(artists, genders, strict=True))) \
        if genders is not None else None
    if fit_pairs == "same-gender" and same is None:
        raise ValueError("fitting on same-gender pairs needs every singer's gender")
    fit = same if fit_pairs == "same-gender" else None
    table = _scored(cross_fitted_splits(scores, labels, sa, sb, fit=fit))
    info = {"source": source, "singers": sorted(set(artists)), "tracks": len(mixtures),
            "pairs": int(len(scores)), "same_singer_pairs": int(labels.sum()),
            "queries": list(queries), "prior": "even odds (classes weighted equally)",
            "fit_pairs": fit_pairs, "ece_cross_fitted": table["ece"],
            "ece_halvings": table["halvings"]}
    if same is not None:
        table["same_gender"] = _scored(cross_fitted_splits(scores, labels, sa, sb, fit=fit,
                                                           score=same))
        info["ece_same_gender"] = table["same_gender"]["ece"]
        info["ece_same_gender_halvings"] = table["same_gender"]["halvings"]
    keep = np.ones(len(scores), bool) if fit is None else fit
    xs, ys = fit_curve(scores[keep], labels[keep])
    return Calibration(embedder.fingerprint, xs, ys, info), table
