"""Listening studies over HTTP (issue 16): a participant (an anonymous id in a cookie) gets the
next trial they have not judged, with the two candidates on sides that hide which model is
which, and votes once per trial; the results give per model pair the win rate with its 95%
interval, ties, participants and trials, and the Bradley-Terry ranking when more than two
models take part (index/study_results.py). Everything is behind the read key when one is
configured; votes count against the per-client request limit."""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Form, Path, Response, Security
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.access import AudioLinks, read_allowed
from app.deps import (
    CatalogDep,
    LinksDep,
    ReadAuth,
    RepositoryDep,
    SearchLimit,
    SettingsDep,
    api_key_header,
)
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


COOKIE = "cvsm_participant"


class Side(BaseModel):
    side: Literal["left", "right"]
    audio_url: str


class TrialOut(BaseModel):
    trial_id: int
    query_audio_url: str
    candidates: list[Side] = Field(description="left, then right; which model is which is hidden")
    done: int
    total: int


class VoteOut(BaseModel):
    recorded: bool
    done: int
    total: int


def left_model(trial_id: int, participant: str) -> str:
    """Which model's candidate ("a" or "b") a participant sees on the left: fixed per
    (participant, trial), so the page needs no hidden state and cannot leak it."""
    digest = hashlib.sha256(f"side:{participant}:{trial_id}".encode()).digest()
    return "a" if digest[0] % 2 == 0 else "b"


def _participant(response: Response, given: str | None) -> str:
    if given and 8 <= len(given) <= 64 and given.isalnum():
        return given
    fresh = secrets.token_hex(16)
    response.set_cookie(COOKIE, fresh, max_age=365 * 86400, httponly=True, samesite="lax")
    return fresh


@router.get("/studies/{name}/next", response_model=TrialOut | None, dependencies=[ReadAuth])
async def next_trial(name: str, response: Response, tracks: RepositoryDep, links: LinksDep,
                     participant: str | None = Cookie(None, alias=COOKIE)) -> TrialOut | None:
    """The participant's next trial (null when they have judged them all)."""
    who = _participant(response, participant)
    try:
        trial = await run_in_threadpool(studies.next_trial, tracks.sessions, name, who)
        done, total = await run_in_threadpool(studies.progress, tracks.sessions, name, who)
    except studies.UnknownStudyError:
        raise ApiError(404, "not_found", f"no study named {name!r}") from None
    if trial is None:
        return None
    first, second = (trial.candidate_a, trial.candidate_b)
    if left_model(trial.id, who) == "b":
        first, second = second, first
    return TrialOut(trial_id=trial.id, query_audio_url=_query_url(links, name, trial),
                    candidates=[Side(side="left", audio_url=links.url(first)),
                                Side(side="right", audio_url=links.url(second))],
                    done=done, total=total)


def _query_subject(trial_id: int) -> str:
    return f"study-query:{trial_id}"


def _query_url(links: AudioLinks, name: str, trial) -> str:
    """A catalog track's own audio link, or the study's link to its stored query clip."""
    if trial.query_kind == "track":
        return links.url(trial.query_ref)
    return links.signed(f"/v1/studies/{name}/trials/{trial.id}/query-audio",
                        _query_subject(trial.id))


@router.get("/studies/{name}/trials/{trial_id}/query-audio", response_class=FileResponse,
            summary="Stream a trial's query clip (a clip from outside the catalog)")
async def query_audio(name: str, trial_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                      catalog: CatalogDep, settings: SettingsDep,
                      links: LinksDep, expires: int | None = None, sig: str | None = None,
                      key: Annotated[str | None, Security(api_key_header)] = None
                      ) -> FileResponse:
    """Private catalogs: the read key, or the signed link `next` gave (players send no
    header)."""
    if not read_allowed(settings.read_api_key, settings.api_key, key):
        links.check(_query_subject(trial_id), expires, sig)
    try:
        trial = await run_in_threadpool(studies.trial_of, catalog.repository.sessions, name,
                                        trial_id)
    except studies.UnknownStudyError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    path = catalog.uploads.readable(trial.query_ref) if trial.query_kind == "upload" else \
        (await run_in_threadpool(catalog.audio_path, trial.query_ref))[1]
    if path is None:
        raise ApiError(404, "audio_unavailable", f"the query audio of trial {trial_id} is gone")
    return FileResponse(path, media_type=mimetypes.guess_type(str(path))[0]
                        or "application/octet-stream")


@router.post("/studies/{name}/votes", response_model=VoteOut, status_code=201,
             dependencies=[ReadAuth, SearchLimit])
async def vote(name: str, tracks: RepositoryDep,
               trial_id: int = Form(..., ge=1, le=2**31 - 1),
               choice: Literal["left", "right", "tie"] = Form(...),
               comment: str = Form("", max_length=2000),
               participant: str | None = Cookie(None, alias=COOKIE)) -> VoteOut:
    """Record the participant's answer; 409 when they already answered this trial."""
    if not participant or len(participant) > 64:
        raise ApiError(400, "no_participant", "open the study page first (it sets the cookie)")
    left = left_model(trial_id, participant)
    outcome = "tie" if choice == "tie" else (left if choice == "left" else
                                             {"a": "b", "b": "a"}[left])
    try:
        sid = await run_in_threadpool(studies.study_id, tracks.sessions, name)
        trial_study = await run_in_threadpool(studies.study_of_trial, tracks.sessions, trial_id)
        if trial_study != sid:
            raise studies.UnknownStudyError(f"trial {trial_id} is not part of {name}")
        recorded = await run_in_threadpool(studies.record_vote, tracks.sessions, trial_id,
                                           participant, outcome, left, comment)
        done, total = await run_in_threadpool(studies.progress, tracks.sessions, name,
                                              participant)
    except studies.UnknownStudyError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if not recorded:
        raise ApiError(409, "already_voted", "this trial already has your answer")
    return VoteOut(recorded=True, done=done, total=total)
