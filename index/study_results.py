"""What a listening study's votes say (issue 16): per model pair a win rate with its 95%
interval, and a Bradley-Terry ranking when more than two models take part.

A vote compares two models' recommendations for one query: outcome "a" (model a's candidate
sounded closer), "b", or "tie" (the participant could not tell). The win rate of a over b is
a's wins over the decisive votes (ties are reported, not counted), with the Wilson score
interval (scipy.stats.binomtest): unlike the normal approximation it stays inside [0, 1] and
keeps its coverage at the few dozen votes a study on one catalog collects. Bradley-Terry models
P(x beats y) = s_x / (s_x + s_y); the strengths are the maximum-likelihood fit over all votes
(a tie counts half a win to each side), found by scipy.optimize on log-strengths with a small
ridge so that a model that never lost stays finite. Pure computation: the study tables in SQL
and the pages feed it `Vote`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import binomtest

OUTCOMES = ("a", "b", "tie")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Vote:
    """One judgement: which of two models' candidates sounded closer to the query."""

    model_a: str
    model_b: str
    outcome: str
    participant: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")
        if self.model_a == self.model_b:
            raise ValueError("a vote compares two different models")


@dataclass(frozen=True)
class PairResult:
    """Votes between two models (`first` < `second` by name) and `first`'s win rate."""

    first: str
    second: str
    first_wins: int
    second_wins: int
    ties: int
    participants: int
    win_rate: float | None  # first's wins / decisive votes; None without decisive votes
    low: float | None
    high: float | None

    @property
    def trials(self) -> int:
        return self.first_wins + self.second_wins + self.ties


def _oriented(vote: Vote) -> tuple[str, str, str]:
    """The vote with its models in name order (the outcome flipped to match)."""
    if vote.model_a < vote.model_b:
        return vote.model_a, vote.model_b, vote.outcome
    flipped = {"a": "b", "b": "a", "tie": "tie"}[vote.outcome]
    return vote.model_b, vote.model_a, flipped


def pair_results(votes: Iterable[Vote]) -> list[PairResult]:
    """Per model pair (sorted by name): wins, ties, participants, win rate and its interval."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    people: dict[tuple[str, str], set[str]] = defaultdict(set)
    for vote in votes:
        first, second, outcome = _oriented(vote)
        counts[(first, second)][outcome] += 1
        people[(first, second)].add(vote.participant)
    out = []
    for (first, second), c in sorted(counts.items()):
        decisive = c["a"] + c["b"]
        rate = low = high = None
        if decisive:
            ci = binomtest(c["a"], decisive).proportion_ci(CONFIDENCE, method="wilson")
            rate, low, high = c["a"] / decisive, float(ci.low), float(ci.high)
        out.append(PairResult(first, second, c["a"], c["b"], c["tie"],
                              len(people[(first, second)]), rate, low, high))
    return out


def _win_matrix(votes: Iterable[Vote], models: list[str]) -> np.ndarray:
    """w[i, j]: how often model i beat model j, a tie counting half to each."""
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for vote in votes:
        a, b = index[vote.model_a], index[vote.model_b]
        if vote.outcome == "a":
            wins[a, b] += 1
        elif vote.outcome == "b":
            wins[b, a] += 1
        else:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins


def bradley_terry(votes: Iterable[Vote], ridge: float = 1e-3) -> dict[str, float]:
    """Each model's Bradley-Terry strength (geometric mean 1), strongest first."""
    votes = list(votes)
    models = sorted({m for v in votes for m in (v.model_a, v.model_b)})
    if len(models) < 2:
        return dict.fromkeys(models, 1.0)
    wins = _win_matrix(votes, models)
    games = wins + wins.T

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = beta[:, None] - beta[None, :]
        log_p = -np.logaddexp(0.0, -diff)  # log P(i beats j)
        p = np.exp(log_p)
        nll = -float(np.sum(wins * log_p)) + ridge * float(beta @ beta)
        grad = -(wins.sum(axis=1) - (games * p).sum(axis=1)) + 2 * ridge * beta
        return nll, grad

    beta = minimize(loss, np.zeros(len(models)), jac=True, method="L-BFGS-B").x
    beta -= beta.mean()
    strengths = {m: float(np.exp(b)) for m, b in zip(models, beta, strict=True)}
    return dict(sorted(strengths.items(), key=lambda kv: -kv[1]))
