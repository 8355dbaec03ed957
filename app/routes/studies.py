"""Results of a listening study (issue 16): per model pair the win rate with its 95% interval,
ties, participants and trials, and the Bradley-Terry ranking when more than two models take
part (index/study_results.py). Behind the read key when one is configured."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.deps import ReadAuth, RepositoryDep
from app.errors import ApiError
from index import studies
from index.study_results import bradley_terry, pair_results

router = APIRouter(prefix="/v1", tags=["studies"])


class PairOut(BaseModel):
    first: str
    second: str
    first_wins: int
    second_wins: int
    ties: int
    trials: int
    participants: int
    win_rate: float | None = Field(description="first's wins / decisive votes (ties excluded)")
    ci_low: float | None = Field(description="Wilson 95% interval of the win rate")
    ci_high: float | None


class RankOut(BaseModel):
    model: str
    strength: float = Field(description="Bradley-Terry strength, geometric mean 1")


class StudyResults(BaseModel):
    study: str
    models: list[str]
    votes: int
    participants: int
    pairs: list[PairOut]
    ranking: list[RankOut] | None = Field(description="strongest first; more than 2 models")


def _results(sessions, name: str) -> StudyResults:
    models = studies.models_of(sessions, name)
    votes = studies.votes(sessions, name)
    pairs = [PairOut(first=p.first, second=p.second, first_wins=p.first_wins,
                     second_wins=p.second_wins, ties=p.ties, trials=p.trials,
                     participants=p.participants, win_rate=p.win_rate, ci_low=p.low,
                     ci_high=p.high) for p in pair_results(votes)]
    ranking = None
    if len(models) > 2 and votes:
        ranking = [RankOut(model=m, strength=round(s, 4))
                   for m, s in bradley_terry(votes).items()]
    return StudyResults(study=name, models=models, votes=len(votes),
                        participants=len({v.participant for v in votes}), pairs=pairs,
                        ranking=ranking)


@router.get("/studies/{name}/results", response_model=StudyResults, dependencies=[ReadAuth])
async def study_results(name: str, tracks: RepositoryDep) -> StudyResults:
    """What the study's votes say so far."""
    try:
        return await run_in_threadpool(_results, tracks.sessions, name)
    except studies.UnknownStudyError:
        raise ApiError(404, "not_found", f"no study named {name!r}") from None
