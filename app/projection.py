"""The embedding map: a 2-D PCA of the catalog's vectors, and the same projection for a query.

PCA (not t-SNE/UMAP) because it is linear: a new query lands in the same frame with one
matrix product, so the page can mark it among the catalog without recomputing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    """Mean and the top two principal axes of a set of vectors."""

    mean: np.ndarray        # (dim,)
    axes: np.ndarray        # (2, dim)

    @classmethod
    def fit(cls, vectors: np.ndarray) -> Projection:
        """Principal axes of `vectors` (n, dim); fewer than 3 rows give a degenerate frame."""
        vectors = np.asarray(vectors, dtype=np.float64)
        mean = vectors.mean(axis=0)
        centred = vectors - mean
        axes = np.zeros((2, vectors.shape[1]))
        if len(vectors) >= 2:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            axes[: min(2, len(vt))] = vt[:2]
        return cls(mean=mean, axes=axes)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) or (dim,) -> (n, 2) or (2,) coordinates in the map's frame."""
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.axes.T
