"""Study statistics against hand computations (issue 16): win rates, Wilson intervals, ties,
participants, and the Bradley-Terry order of a synthetic 3-model vote set with known strengths."""

from __future__ import annotations

import math

import pytest

from index.study_results import Vote, bradley_terry, pair_results

Z = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out (Wilson 1927)."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def fixture() -> list[Vote]:
    """A vs B: A 7, B 3, 2 ties, 4 people, sides recorded both ways round; B vs C: B 5, C 0."""
    votes = [Vote("A", "B", "a", f"p{i % 4}") for i in range(4)]
    votes += [Vote("B", "A", "b", f"p{i % 4}") for i in range(3)]  # A wins from the right
    votes += [Vote("A", "B", "b", "p1"), Vote("B", "A", "a", "p2"), Vote("A", "B", "b", "p3")]
    votes += [Vote("A", "B", "tie", "p0"), Vote("B", "A", "tie", "p1")]
    votes += [Vote("C", "B", "b", "p9") for _ in range(5)]
    return votes


def test_win_rates_intervals_ties_and_people_match_a_hand_count() -> None:
    ab, bc = pair_results(fixture())
    assert (ab.first, ab.second, ab.first_wins, ab.second_wins, ab.ties) == ("A", "B", 7, 3, 2)
    assert ab.trials == 12 and ab.participants == 4
    assert ab.win_rate == pytest.approx(0.7)
    assert (ab.low, ab.high) == pytest.approx(wilson(7, 10), abs=1e-9)
    assert (bc.first, bc.second, bc.first_wins, bc.second_wins) == ("B", "C", 5, 0)
    assert bc.win_rate == 1.0 and bc.high == pytest.approx(1.0) and bc.low == pytest.approx(
        wilson(5, 5)[0], abs=1e-9)  # an interval, not the point 1.0


def test_only_ties_give_no_rate() -> None:
    (only,) = pair_results([Vote("A", "B", "tie", "p")])
    assert only.win_rate is None and only.low is None and only.ties == 1


def test_two_models_strength_ratio_is_the_win_ratio() -> None:
    """With two models the MLE is s_A / s_B = wins_A / wins_B (ties half each: 8 / 4)."""
    s = bradley_terry([v for v in fixture() if "C" not in (v.model_a, v.model_b)])
    assert list(s) == ["A", "B"] and s["A"] / s["B"] == pytest.approx(2.0, rel=0.01)


def test_bradley_terry_recovers_a_known_order() -> None:
    """Expected vote counts of strengths 4 : 2 : 1 (300 votes a pair) give back that order and
    those ratios."""
    strength = {"X": 4.0, "Y": 2.0, "Z": 1.0}
    votes = []
    for a, b in (("X", "Y"), ("X", "Z"), ("Y", "Z")):
        wins = round(300 * strength[a] / (strength[a] + strength[b]))
        votes += [Vote(a, b, "a")] * wins + [Vote(b, a, "a")] * (300 - wins)
    s = bradley_terry(votes)
    assert list(s) == ["X", "Y", "Z"]
    assert s["X"] / s["Y"] == pytest.approx(2.0, rel=0.03)
    assert s["Y"] / s["Z"] == pytest.approx(2.0, rel=0.03)
    assert math.prod(s.values()) == pytest.approx(1.0)


def test_bad_votes_are_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        Vote("A", "B", "left")
    with pytest.raises(ValueError, match="different"):
        Vote("A", "A", "a")
