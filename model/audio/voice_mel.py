"""The speaker encoder's front end: 40 mel bands of linear power, 25 ms windows every 10 ms
(Resemblyzer's `wav_to_mel_spectrogram`, librosa one clip at a time, as one batched torchaudio
transform that matches it to 3e-7).

Its input is linear power, so level matters: the speaker encoder was trained on utterances at
-30 dBFS, and our chunks arrive with each 5 s block at the RMS of a unit-norm 5 s segment
(model/audio/signal.py, about -49 dBFS). `VoiceMel` lifts them by the fixed gain between the two,
so a chunk sits where a whole normalised utterance would.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

from model.audio.signal import BLOCK, SAMPLE_RATE

N_VOICE_MELS = 40
HOP = 160
#: Resemblyzer's `audio_norm_target_dBFS`.
TARGET_DBFS = -30.0
#: Chunk level (unit-norm 5 s block) -> the speaker encoder's level.
CHUNK_GAIN = 10 ** (TARGET_DBFS / 20) * math.sqrt(BLOCK)


def voice_mel_spectrogram() -> torchaudio.transforms.MelSpectrogram:
    """(batch, samples) -> (batch, 40, frames) linear-power mel, Resemblyzer's parameters."""
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=400, hop_length=HOP, n_mels=N_VOICE_MELS, power=2.0,
        center=True, pad_mode="constant", norm="slaney", mel_scale="slaney")


class VoiceMel(nn.Module):
    """(batch, samples) chunk-level waveform -> (batch, frames, 40), the speaker encoder's
    input (101 frames for one second: the transform centres its windows)."""

    def __init__(self) -> None:
        super().__init__()
        self.mel = voice_mel_spectrogram()

    @staticmethod
    def frames(n_samples: int) -> int:
        return 1 + n_samples // HOP

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # float32 even under autocast: bf16 powers lose the quiet bands
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return self.mel(wave.float() * CHUNK_GAIN).transpose(1, 2)
