"""Listening studies in SQL (issue 16) on SQLite and PostgreSQL: votes are kept exactly once,
participants get the trials they have not judged, the migrations match the ORM metadata."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from index import db, studies
from index.schema import Base, StudyTrial, StudyVote
from index.studies import TrialSpec
from index.study_results import pair_results


@pytest.fixture
def sessions(db_url):
    db.migrate(db_url)
    engine = db.make_engine(db_url)
    yield db.session_factory(engine)
    engine.dispose()


def make_study(sessions, name: str = "s1", n: int = 6) -> int:
    trials = [TrialSpec(f"q{i}", "old", "new", f"c{i}a", f"c{i}b") for i in range(n)]
    return studies.create_study(sessions, name, ["old", "new"], trials)


def test_migrations_match_the_orm_metadata(db_url) -> None:
    db.migrate(db_url)
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_a_vote_counts_once_and_the_first_answer_stands(sessions) -> None:
    make_study(sessions)
    trial = studies.next_trial(sessions, "s1", "alice")
    assert studies.record_vote(sessions, trial.id, "alice", "a", left="b")
    assert not studies.record_vote(sessions, trial.id, "alice", "b")  # a second answer
    assert studies.record_vote(sessions, trial.id, "bob", "tie")
    votes = studies.votes(sessions, "s1")
    assert [(v.participant, v.outcome) for v in votes] == [("alice", "a"), ("bob", "tie")]
    (pair,) = pair_results(votes)
    assert (pair.first, pair.second, pair.first_wins, pair.ties) == ("new", "old", 0, 1)
    assert pair.second_wins == 1  # alice preferred "old" (model a of the trial)


def test_participants_meet_every_trial_once(sessions) -> None:
    make_study(sessions, n=5)
    seen = []
    while (trial := studies.next_trial(sessions, "s1", "carol")) is not None:
        assert studies.progress(sessions, "s1", "carol") == (len(seen), 5)
        seen.append(trial.id)
        studies.record_vote(sessions, trial.id, "carol", "a")
    assert len(set(seen)) == 5 and studies.progress(sessions, "s1", "carol") == (5, 5)
    other = studies.next_trial(sessions, "s1", "dave")
    assert other is not None  # others' votes do not use up dave's trials


def test_bad_studies_and_votes_are_refused(sessions) -> None:
    make_study(sessions)
    with pytest.raises(studies.StudyExistsError):
        make_study(sessions)
    with pytest.raises(ValueError, match="two of the study"):
        studies.create_study(sessions, "s2", ["old", "new"],
                             [TrialSpec("q", "old", "other", "x", "y")])
    with pytest.raises(studies.UnknownStudyError):
        studies.next_trial(sessions, "nope", "alice")
    trial = studies.next_trial(sessions, "s1", "alice")
    with pytest.raises(ValueError, match="outcome"):
        studies.record_vote(sessions, trial.id, "alice", "left")
    with pytest.raises(studies.UnknownStudyError):
        studies.record_vote(sessions, 10_000, "alice", "a")


def test_concurrent_voters_lose_none_and_double_none(sessions) -> None:
    """8 threads submit 4 participants x 6 trials, every answer twice and in shuffled order:
    exactly one row per (trial, participant) survives."""
    make_study(sessions, n=6)
    with sessions() as session:
        trial_ids = list(session.scalars(select(StudyTrial.id)))
    jobs = [(t, f"p{p}", "ab"[(t + p) % 2]) for t in trial_ids for p in range(4)] * 2
    jobs = jobs[::2] + jobs[1::2]
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda j: studies.record_vote(sessions, *j), jobs))
    assert sum(created) == len(trial_ids) * 4
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(StudyVote))
    assert rows == len(trial_ids) * 4
