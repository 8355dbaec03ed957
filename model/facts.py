"""What the rest of the system may know about a model without loading torch.

The index and the service store vectors keyed by a model's fingerprint and dimension; they
need nothing else from the network. `TrackEmbedder` is the contract they type against
(`model.inference.embedder.Embedder` meets it), so `import index.catalog` never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

#: Width of the EfficientNet-B0 backbone output, the paper's representation (docs/design.md).
EMBED_DIM = 1280


class TrackEmbedder(Protocol):
    """A loaded model that turns 16 kHz mono waveforms into unit-norm track vectors."""

    fingerprint: str  # hash of the served weights: names the model in SQL and FAISS files
    dim: int          # length of the vectors it returns

    def embed_waveform(self, wave: np.ndarray) -> np.ndarray:
        """One track's (dim,) float32 unit vector."""
        ...

    def embed_many(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Several tracks at once (shared batches), in order."""
        ...
