"""A speaker-encoder backbone: the GE2E network of Resemblyzer (3-layer LSTM over 40 mel bands,
last hidden state -> Linear(256) -> ReLU -> unit length), as a CVSM backbone.

Why it is here: the distilled EfficientNet student had to learn voice identity from 33 voices and
never matched its teacher on clean vocals (MIR-1K folds, vocals->vocals mAP 0.68 against the
teacher's 0.91). Started from the teacher's own weights (`init = "teacher"`, weights from the
`resemblyzer` wheel, used at training time only) and trained to give a mixture the teacher's
view of its clean vocals, the network keeps what thousands of speakers taught it and learns to
ignore the band (docs/training.md, "The voice-LSTM student"). Parameter names match the
package's, so its state dict loads as is.
"""

from __future__ import annotations

import torch
from torch import nn

from model.audio.signal import CHUNK
from model.audio.voice_mel import N_VOICE_MELS, VoiceMel

VOICE_DIM = 256


def pool_frames(mel: torch.Tensor, k: int) -> torch.Tensor:
    """(batch, frames, mels) -> (batch, frames // k, mels): the mean of each k consecutive
    frames of linear power, i.e. the power of a longer window every k hops. Why: the LSTM's cost
    is one recurrent step per frame, so k divides the backbone's work by k (docs/benchmarks.md,
    "Pooled frames"); frames left over at the end are dropped."""
    if k == 1:
        return mel
    steps = mel.shape[1] // k
    return mel[:, : steps * k].reshape(-1, steps, k, mel.shape[2]).mean(dim=2)


class VoiceBackbone(nn.Module):
    """(batch, frames, 40) linear-power mel -> (batch, 256) unit embeddings."""

    dim = VOICE_DIM
    #: (frames, mels) of one 1 s chunk's front-end output (VoiceMel centres its windows).
    input_shape = (VoiceMel.frames(CHUNK), N_VOICE_MELS)

    def __init__(self, frame_pool: int = 1) -> None:
        super().__init__()
        if frame_pool < 1:
            raise ValueError("frame_pool must be >= 1")
        #: Consecutive mel frames averaged into one LSTM step (1: the speaker encoder's 10 ms).
        self.frame_pool = frame_pool
        self.lstm = nn.LSTM(N_VOICE_MELS, VOICE_DIM, num_layers=3, batch_first=True)
        self.linear = nn.Linear(VOICE_DIM, VOICE_DIM)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(pool_frames(mel, self.frame_pool))
        raw = torch.relu(self.linear(hidden[-1]))
        # the package divides by the norm unguarded; an all-zero ReLU output would be NaN
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-8)
