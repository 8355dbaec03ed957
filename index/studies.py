"""Listening studies in SQL (issue 16): create a study with its trials, hand a participant the
next trial they have not judged, record a vote exactly once, read the votes back for
index/study_results.py.

"Exactly once" is the database's job, not the caller's: `study_votes` has a unique
(trial, participant) pair, so two concurrent submissions of the same answer (a double click, a
retried request, two tabs) insert one row and the other learns it was a duplicate, on SQLite
and PostgreSQL alike; nothing is read first and then written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from index.schema import Study, StudyTrial, StudyVote
from index.study_results import OUTCOMES, Vote


@dataclass(frozen=True)
class TrialSpec:
    """A query and one candidate from each of two models."""

    query_ref: str
    model_a: str
    model_b: str
    candidate_a: str
    candidate_b: str
    query_kind: str = "track"


class StudyExistsError(ValueError):
    """A study of that name already exists."""


class UnknownStudyError(LookupError):
    """No study (or no trial of it) by that name or id."""


def create_study(sessions: sessionmaker, name: str, models: list[str],
                 trials: list[TrialSpec]) -> int:
    """Store a study and its trials in one transaction; returns the study's id."""
    if len(set(models)) < 2:
        raise ValueError("a study compares at least two different models")
    if not trials:
        raise ValueError("a study needs at least one trial")
    for t in trials:
        if t.model_a == t.model_b or {t.model_a, t.model_b} - set(models):
            raise ValueError(f"trial {t} does not pair two of the study's models")
    with sessions() as session:
        study = Study(name=name, models=list(models))
        session.add(study)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise StudyExistsError(f"a study named {name!r} already exists") from None
        session.add_all(StudyTrial(study_id=study.id, **t.__dict__) for t in trials)
        session.commit()
        return study.id


def _one(sessions: sessionmaker, statement, missing: str):
    """The single value `statement` selects, or UnknownStudyError(missing)."""
    with sessions() as session:
        found = session.scalar(statement)
    if found is None:
        raise UnknownStudyError(missing)
    return found


def study_id(sessions: sessionmaker, name: str) -> int:
    return _one(sessions, select(Study.id).where(Study.name == name), f"no study named {name!r}")


def models_of(sessions: sessionmaker, name: str) -> list[str]:
    """The models a study compares."""
    return list(_one(sessions, select(Study.models).where(Study.name == name),
                     f"no study named {name!r}"))


def study_of_trial(sessions: sessionmaker, trial_id: int) -> int:
    """The id of the study a trial belongs to."""
    return _one(sessions, select(StudyTrial.study_id).where(StudyTrial.id == trial_id),
                f"no trial {trial_id}")


def trial_of(sessions: sessionmaker, name: str, trial_id: int) -> StudyTrial:
    """A trial of the named study (UnknownStudyError for another study's or none)."""
    with sessions() as session:
        trial = session.scalar(select(StudyTrial).join(Study).where(
            (Study.name == name) & (StudyTrial.id == trial_id)))
        if trial is None:
            raise UnknownStudyError(f"no trial {trial_id} in study {name!r}")
        session.expunge(trial)
    return trial


def _order_key(trial_id: int, participant: str) -> str:
    """Each participant meets the trials in their own fixed pseudo-random order."""
    return hashlib.sha256(f"{participant}:{trial_id}".encode()).hexdigest()


def next_trial(sessions: sessionmaker, name: str, participant: str) -> StudyTrial | None:
    """A trial of the study this participant has not judged yet (None when all are done)."""
    sid = study_id(sessions, name)
    judged = select(StudyVote.trial_id).where(StudyVote.participant == participant)
    with sessions() as session:
        open_trials = list(session.scalars(
            select(StudyTrial).where(StudyTrial.study_id == sid,
                                     StudyTrial.id.not_in(judged))))
        session.expunge_all()
    if not open_trials:
        return None
    return min(open_trials, key=lambda t: _order_key(t.id, participant))


def progress(sessions: sessionmaker, name: str, participant: str) -> tuple[int, int]:
    """(trials this participant judged, trials in the study)."""
    sid = study_id(sessions, name)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(StudyTrial)
                               .where(StudyTrial.study_id == sid))
        done = session.scalar(select(func.count()).select_from(StudyVote).join(StudyTrial)
                              .where(StudyTrial.study_id == sid,
                                     StudyVote.participant == participant))
    return int(done or 0), int(total or 0)


def record_vote(sessions: sessionmaker, trial_id: int, participant: str, outcome: str,
                left: str = "a", comment: str = "") -> bool:
    """Store a participant's answer to a trial; False when they had already answered it (the
    first answer stands)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    if left not in ("a", "b"):
        raise ValueError("left must be 'a' or 'b'")
    if not participant or len(participant) > 64:
        raise ValueError("participant ids are 1-64 characters")
    with sessions() as session:
        if session.get(StudyTrial, trial_id) is None:
            raise UnknownStudyError(f"no trial {trial_id}")
        session.add(StudyVote(trial_id=trial_id, participant=participant, outcome=outcome,
                              left=left, comment=comment[:2000]))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def votes(sessions: sessionmaker, name: str) -> list[Vote]:
    """Every vote of the study, ready for index/study_results.py."""
    sid = study_id(sessions, name)
    with sessions() as session:
        rows = session.execute(
            select(StudyTrial.model_a, StudyTrial.model_b, StudyVote.outcome,
                   StudyVote.participant).join(StudyTrial)
            .where(StudyTrial.study_id == sid).order_by(StudyVote.id)).all()
    return [Vote(a, b, outcome, participant) for a, b, outcome, participant in rows]


#: Columns of `cvsm study export`: one row per vote, the winner spelled out.
EXPORT_COLUMNS = ("study", "trial_id", "query_kind", "query_ref", "model_a", "model_b",
                  "candidate_a", "candidate_b", "participant", "outcome", "winner",
                  "left_model", "comment", "created_at")


def export_rows(sessions: sessionmaker, name: str) -> list[dict[str, str]]:
    """Every vote of the study with its trial, oldest first (for CSV)."""
    sid = study_id(sessions, name)
    with sessions() as session:
        rows = session.execute(select(StudyTrial, StudyVote).join(StudyVote)
                               .where(StudyTrial.study_id == sid)
                               .order_by(StudyVote.id)).all()
    out = []
    for trial, vote in rows:
        winner = {"a": trial.model_a, "b": trial.model_b, "tie": "tie"}[vote.outcome]
        left_model = trial.model_a if vote.left == "a" else trial.model_b
        out.append({"study": name, "trial_id": str(trial.id), "query_kind": trial.query_kind,
                    "query_ref": trial.query_ref, "model_a": trial.model_a,
                    "model_b": trial.model_b, "candidate_a": trial.candidate_a,
                    "candidate_b": trial.candidate_b, "participant": vote.participant,
                    "outcome": vote.outcome, "winner": winner, "left_model": left_model,
                    "comment": vote.comment, "created_at": vote.created_at.isoformat()})
    return out
