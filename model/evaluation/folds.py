"""Named, singer-disjoint evaluation folds, so every number in docs/results.md says exactly which
singers were heard in training and which were only ever queried.

A single fold of MIR-1K dev (6 test singers) swings by several points with which singers land
on each side, so there are two complementary folds, A and B: together they test every MIR-1K
dev singer once, each time with a model that never heard that singer. The third fold asks
whether a model generalises beyond MIR-1K's 13 (Mandarin, amateur, karaoke) singers: RAVDESS
actors 9-16 of voices-extra, sung a cappella and laid over MIR-1K dev accompaniment
(`model/evaluation/overlay.py`), held out of every training run that reports on it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: MIR-1K dev singers tested by fold A (2 female, 4 male; 317 clips).
MIR1K_A = ("yifen", "Ani", "geniusturtle", "jmzen", "bobon", "abjones")
#: The other 7 MIR-1K dev singers, tested by fold B (429 clips).
MIR1K_B = ("amy", "ariel", "tammy", "leon", "davidson", "Kenshin", "fdps")
#: RAVDESS actors 9-16 of voices-extra (odd actor numbers male, even female).
RAVDESS_TEST = tuple(f"ravdess_a{n:02d}" for n in range(9, 17))


@dataclass(frozen=True)
class Fold:
    """One evaluation fold: whom it tests and whom a training run for it must not see.

    `exclude_from_training` equals `test_singers` for every fold here (singer-disjoint);
    it is its own field so that a fold holding out more than it tests stays expressible.
    """

    name: str
    data: str  # which corpus the test manifest comes from, in words (never a path)
    test_singers: tuple[str, ...]
    exclude_from_training: tuple[str, ...]
    description: str


FOLDS: dict[str, Fold] = {
    "A": Fold("A", "MIR-1K dev", MIR1K_A, MIR1K_A,
              "tests the 6 MIR-1K dev singers of fold A; trains on the other 7"),
    "B": Fold("B", "MIR-1K dev", MIR1K_B, MIR1K_B,
              "tests the 7 MIR-1K dev singers of fold B; trains on the 6 of fold A"),
    "ravdess": Fold("ravdess", "voices-extra (RAVDESS sung takes over MIR-1K dev accompaniment)",
                    RAVDESS_TEST, RAVDESS_TEST,
                    "tests RAVDESS actors 9-16 (sung takes over MIR-1K dev accompaniment); "
                    "they are held out of training"),
}
#: The folds whose mean is reported as "MIR-1K dev, both folds".
MIR1K_FOLDS = ("A", "B")


def get_fold(name: str) -> Fold:
    """The fold called `name` (A, B or ravdess); a ValueError names the choices otherwise."""
    try:
        return FOLDS[name]
    except KeyError:
        raise ValueError(f"unknown fold {name!r}; choose from {', '.join(FOLDS)}") from None


def fold_singers(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(test singers, singers to exclude from training) of a fold."""
    fold = get_fold(name)
    return fold.test_singers, fold.exclude_from_training
