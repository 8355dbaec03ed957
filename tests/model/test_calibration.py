"""Calibrated scores: the cosine -> P(same singer) curve is monotone, honest on held-out
singers, fails a miscalibrated predictor, and the command writes what the service reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.calibration import (
    Calibration,
    cross_fitted,
    cross_fitted_splits,
    fit_curve,
    halvings,
    label,
    pair_table,
    pooled,
    reliability,
    same_gender_pairs,
)


def _pairs(seed: int = 0, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of same-singer pairs ~ N(0.8, 0.08), of other pairs ~ N(0.6, 0.08); 1 in 8 same."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 1 / 8
    scores = np.where(labels, rng.normal(0.8, 0.08, n), rng.normal(0.6, 0.08, n))
    return scores, labels


def test_curve_is_monotone_and_reads_at_even_odds() -> None:
    scores, labels = _pairs()
    xs, ys = fit_curve(scores, labels)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0)
    curve = Calibration("fp", xs, ys)
    # equal class weights: halfway between the two means is an even call, whatever the 1:7 prior
    assert curve.probability(0.7) == pytest.approx(0.5, abs=0.12)
    assert curve.probability(0.95) > 0.9 and curve.probability(0.45) < 0.1
    assert label(0.9) == "very likely the same singer" and label(0.05) == "a different voice"


def test_cross_fitted_calibration_is_good_and_a_bad_predictor_is_caught() -> None:
    rng = np.random.default_rng(1)
    singers = np.array([f"s{i}" for i in range(8)])
    a, b = rng.choice(singers, 6000), rng.choice(singers, 6000)
    labels = a == b
    scores = np.where(labels, rng.normal(0.8, 0.08, 6000), rng.normal(0.6, 0.08, 6000))
    probs, truth = cross_fitted(scores, labels, a, b)
    assert reliability(probs, truth)["ece"] < 0.04  # 0.026 with this seed
    overconfident = np.where(scores > 0.7, 0.99, 0.01)  # right side, wrong confidence
    assert reliability(overconfident, labels)["ece"] > 0.08  # 0.094: claims 0.99, right 89%


def test_pair_table_leaves_out_same_song_and_self() -> None:
    vecs = np.eye(4, dtype=np.float32)
    scores, labels, sa, sb = pair_table({"mixture": vecs}, vecs, ["x", "x", "y", "y"],
                                        ["s1", "s2", "s1", "s3"])
    assert len(scores) == 10  # 12 ordered pairs minus (0,2) and (2,0): same song "s1"
    assert labels.sum() == 4 and set(zip(sa, sb, strict=True)) >= {("x", "x"), ("y", "y")}


def test_calibrate_command_writes_curve_and_diagram(synth_manifest: Path, init_checkpoint: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "calib.json"
    subprocess.run([sys.executable, "-m", "app.cli", "calibrate", "--checkpoint",
                    str(init_checkpoint), "--data", str(synth_manifest), "--out", str(out),
                    "--device", "cpu", "--fit-pairs", "same-gender"],
                   check=True, capture_output=True, timeout=300)
    curve = Calibration.load(out)
    assert len(curve.info["singers"]) == 4 and curve.info["pairs"] > 0
    # two men and two women: only the men/women halving leaves pairs of one gender to fit on
    assert curve.info["fit_pairs"] == "same-gender"
    assert curve.info["ece_same_gender_halvings"]["count"] == 1
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert 0.0 <= curve.probability(0.5) <= 1.0


def test_bundled_calibration_matches_the_bundled_model() -> None:
    from model import checkpoint
    from model.weights import DEFAULT_CALIBRATION, default_checkpoint

    curve = Calibration.load(DEFAULT_CALIBRATION)
    assert curve.fingerprint == checkpoint.load(default_checkpoint())["fingerprint"]
    # calibrated on the pairs it was fitted for (one gender's: what a result list mostly shows)
    if curve.info.get("fit_pairs") == "same-gender":
        assert curve.info["ece_same_gender"] < 0.07  # 0.065 for b26ec3fd; all-pairs curve 0.161
    else:
        assert curve.info["ece_cross_fitted"] < 0.05


def test_halvings_cover_every_split_once_and_sample_many_singers() -> None:
    eight = [f"s{i}" for i in range(8)]
    splits = halvings(eight)
    assert splits[0] == ("s0", "s2", "s4", "s6")  # the every-other-singer split comes first
    assert len(splits) == len(set(splits)) == 35  # C(8, 4) / 2: each split named once
    assert all(len(h) == 4 and "s0" in h for h in splits)
    many = [f"v{i:02d}" for i in range(30)]
    drawn = halvings(many, limit=12)
    assert len(drawn) == len(set(drawn)) == 12 and drawn == halvings(many, limit=12)
    assert all(len(h) == 15 and "v00" in h for h in drawn[1:])


def test_cross_fitting_pools_every_halving() -> None:
    """A split that trains on some singers and tests on very different ones is one draw among
    35, not the whole estimate: the pooled predictions hold each halving's test pairs."""
    rng = np.random.default_rng(2)
    singers = np.array([f"s{i}" for i in range(8)])
    a, b = rng.choice(singers, 3000), rng.choice(singers, 3000)
    labels = a == b
    scores = np.where(labels, rng.normal(0.8, 0.08, 3000), rng.normal(0.6, 0.08, 3000))
    splits = cross_fitted_splits(scores, labels, a, b)
    probs, truth = cross_fitted(scores, labels, a, b)
    assert len(splits) == 35 and len(probs) == len(truth) == sum(len(p) for p, _ in splits)
    assert reliability(probs, truth)["ece"] < 0.04


def _gendered_pairs(n: int = 8000) -> tuple[np.ndarray, ...]:
    """Like the real model on RAVDESS: a man and a woman score far apart (cosine ~0.37), two
    singers of one gender close (~0.62), one singer closest (~0.72)."""
    rng = np.random.default_rng(3)
    singers = np.array([f"s{i}" for i in range(8)])
    gender_of = {s: "male" if i < 4 else "female" for i, s in enumerate(singers)}
    a, b = rng.choice(singers, n), rng.choice(singers, n)
    labels = a == b
    same = same_gender_pairs(a, b, gender_of)
    scores = np.select([labels, same], [rng.normal(0.72, 0.06, n), rng.normal(0.62, 0.06, n)],
                       rng.normal(0.37, 0.06, n))
    return scores, labels, a, b, same


def test_cross_fitting_skips_halves_with_nothing_to_fit_on() -> None:
    a = np.array(["m1", "m1", "m2", "f1", "f1", "f2", "m1", "f1"])
    b = np.array(["m1", "m2", "m2", "f1", "f2", "f2", "f1", "m2"])
    labels, scores = a == b, np.where(a == b, 0.8, 0.5)
    same = same_gender_pairs(a, b, {"m1": "male", "m2": "male", "f1": "female", "f2": "female"})
    splits = cross_fitted_splits(scores, labels, a, b, fit=same)
    assert len(splits) == 1  # of 3 halvings only {m1, m2} | {f1, f2} has negatives in each half
    with pytest.raises(ValueError, match="more singers"):
        cross_fitted_splits(scores, labels, a, b, fit=labels)


def test_same_gender_pairs_needs_every_gender() -> None:
    a, b = np.array(["x", "x", "y"]), np.array(["y", "x", "z"])
    mask = same_gender_pairs(a, b, {"x": "male", "y": "male", "z": "female"})
    assert mask.tolist() == [True, True, False]
    assert same_gender_pairs(a, b, {"x": "male", "y": "male", "z": ""}) is None


def test_a_curve_fitted_on_one_gender_holds_within_one_gender() -> None:
    """Easy cross-gender negatives make a pooled curve look calibrated while it overrates
    pairs of one gender; fitting on same-gender pairs is what holds there."""
    scores, labels, a, b, same = _gendered_pairs()
    pooled_fit = cross_fitted_splits(scores, labels, a, b, score=same)
    gender_fit = cross_fitted_splits(scores, labels, a, b, fit=same, score=same)
    ece_pooled = reliability(*cross_fitted(scores, labels, a, b))["ece"]
    ece_within_pooled = reliability(*pooled(pooled_fit))["ece"]
    ece_within_gender = reliability(*pooled(gender_fit))["ece"]
    assert ece_pooled < 0.05  # every pair together: looks fine
    assert ece_within_pooled > 0.08  # the same curve on one gender's pairs: overconfident
    assert ece_within_gender < 0.05
    # only pairs of one gender, within one half of each halving, are scored
    within_half = [(np.isin(a, h) == np.isin(b, h)) & same for h in halvings(list(a))]
    assert [len(p) for p, _ in gender_fit] == [int(m.sum()) for m in within_half]
